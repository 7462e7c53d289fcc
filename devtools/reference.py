"""The references generated from the code, and the shipped configuration file:

    python -m devtools.reference          # writes them
    python -m devtools.reference --check  # exit 1 naming each file that is stale

- ``config/lifecycled.yaml``: every key of the settings schema with its default and its
  description as a comment (the lists and mappings of sections as commented examples);
- ``docs/reference/configuration.md``: the same keys as tables (type, default, description);
- ``docs/reference/cli.md``: every command's ``--help``, from the argparse parser;
- ``docs/reference/metrics.md``: every metric family, from the exporter's catalogue.

``tests/test_docs.py`` fails while any of them differs from what this writes."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import yaml
from lifecycled import fields as units
from lifecycled.settings import Settings
from lifecycled.units import budget_text, duration_text
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 100

# --- walking the schema -------------------------------------------------------------------------

SCALARS: dict[Any, str] = {
    units.Duration: "duration", units.PositiveDuration: "duration (> 0)", units.Size: "size",
    units.Ratio: "ratio (0-1)", units.NonNegative: "number (>= 0)", units.Name: "name",
    units.HttpUrl: "URL", units.DataPath: "path, glob or URL", units.Header: "string",
    units.Budget: "false alarms per period (1/30d)",
    units.Text: "string", units.Prose: "text", bool: "boolean", int: "integer",
    float: "number", str: "string",
}


def type_text(hint: Any) -> str:
    """How a field's type reads in the reference."""
    for alias, text in SCALARS.items():
        if hint is alias:
            return text
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        text = " or ".join(type_text(a) for a in rest)
        return text + " or null" if len(rest) < len(args) else text
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin is tuple:
        return "list of " + type_text(args[0])
    if origin is dict:
        return f"mapping of {type_text(args[0])} to {type_text(args[1])}"
    if isinstance(hint, type) and issubclass(hint, Enum):
        return "one of " + ", ".join(str(m.value) for m in hint)
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return "section"
    return getattr(hint, "__name__", str(hint))


def section_of(hint: Any) -> tuple[str, type[BaseModel]] | None:
    """('one' | 'optional' | 'list' | 'mapping', the section class) when ``hint`` holds one."""
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return "one", hint
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        found = section_of(rest[0]) if len(rest) == 1 else None
        return ("optional", found[1]) if found and found[0] == "one" else None
    if origin is tuple and section_of(args[0]):
        return "list", args[0]
    if origin is dict and section_of(args[1]):
        return "mapping", args[1]
    return None


def bounds(metadata: list[Any]) -> str:
    """A field's limits as written beside its type: ``(1 to 64)``, ``(> 0)``."""
    words = []
    for item in metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None:
                words.append(f"{sign} {value:g}" if isinstance(value, float) else f"{sign} {value}")
    return f" ({', '.join(words)})" if words else ""


@dataclass(frozen=True)
class Key:
    path: str            # e.g. daemon.tls.cert_file, sources.triton[].name, models.<name>.tags
    hint: Any
    limits: str
    default: Any         # PydanticUndefined when required
    description: str
    required: bool


def hints(model: type[BaseModel]) -> dict[str, Any]:
    return typing.get_type_hints(model, include_extras=True)


def description(model: type[BaseModel], name: str) -> str:
    return " ".join((model.model_fields[name].description or "").split())


def walk(model: type[BaseModel], prefix: str = "") -> Iterator[Key]:
    """Every key of ``model``, depth first, in the schema's order."""
    types_ = hints(model)
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        hint = types_[name]
        section = section_of(hint)
        yield Key(path, hint, bounds(field.metadata), field.default, description(model, name),
                  field.is_required())
        if section is None:
            continue
        kind, inner = section
        below = {"one": path + ".", "optional": path + ".", "list": path + "[].",
                 "mapping": path + ".<name>."}[kind]
        yield from walk(inner, below)


# --- rendering values in the configuration's units ----------------------------------------------

def size_text(size: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale and size % scale == 0:
            return f"{int(size // scale)}{unit}"
    return f"{int(size)}B"


def plain(hint: Any, value: Any) -> Any:
    """``value`` of a field typed ``hint`` as it is written in the YAML file."""
    if value is None:
        return None
    scalar = hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        scalar = next(a for a in typing.get_args(hint) if a is not type(None))
    if scalar in (units.Duration, units.PositiveDuration):
        return duration_text(value)
    if scalar is units.Budget:
        return budget_text(value)
    if scalar is units.Size:
        return size_text(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return {k: plain(hints(type(value))[k], getattr(value, k))
                for k in type(value).model_fields}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


# --- config/lifecycled.yaml ---------------------------------------------------------------------

HEADER = """\
# lifecycled configuration: every key with its default and what it does (generated from the
# settings schema by `python -m devtools.reference`; docs/reference/configuration.md has the same
# as tables). Unknown keys are errors. Lists and mappings of sections (sources.prometheus,
# models, webhooks) are shown as commented examples with every key. Works as is on one machine:
# Triton on 127.0.0.1:8000 and 8002, the state in a local SQLite file, no Prometheus.
# Durations: 90s, 5m, 1h30m, 7d, 80ms (a bare number is seconds). Sizes: 512MiB, 2GB.
# Ratios: 0.8 or "80%". Secrets are never written here: only *_file and *_env references.
# Per-model files may live in models.d/ beside this file (one model per file, with a `name` key).
"""

# Where the shipped file shows an example instead of the (empty) default. "live" examples are
# part of the configuration; the others are commented out.
EXAMPLES: dict[str, tuple[bool, Any]] = {
    "sources.triton": (True, [{"name": "local", "url": "http://127.0.0.1:8000",
                               "metrics_url": "http://127.0.0.1:8002/metrics"}]),
    "sources.prometheus": (False, {
        "url": "http://127.0.0.1:9090",
        "basic_auth": {"username": "lifecycled", "password_file": "prometheus_password"}}),
    "models": (False, {"credit_scoring": {
        "owner_team": "risk_ml", "business_domain": "credit_risk",
        "model_type": "classification", "description": "Probability of default, retail loans",
        "training_dataset": "s3://risk/training/credit_scoring/2026-06.parquet",
        "tags": ["pd"], "dependencies": ["feature_store_client"],
        "thresholds": {"min_accuracy": "88%"},
        # {}: every key of the section shown with its default
        "drift": {"reference": "s3://risk/training/credit_scoring/2026-06.parquet",
                  "weights": {}, "tiers": {}},
        "quality": {"predictions": {"path": "s3://risk/predictions/credit_scoring/{version}/*.parquet"},
                    "labels": {"path": "s3://risk/outcomes/credit_scoring/*.parquet",
                               "timestamp_column": "known_at"},
                    "score_column": "score", "maturity": "90d"},
        "segment_by": ["channel"]},
        # a model judged from the score histogram its serving gateway exports
        "gateway_scored": {"drift": {"source": "prometheus", "window": "1d",
                                     "histogram": {"metric": "gateway_score",
                                                   "matchers": {"job": "gateway"}}}}}),
    "defaults.drift.histogram": (False, {"metric": "gateway_score"}),
    "webhooks": (False, {"pipeline": {
        "url": "https://ci.example.org/hooks/lifecycled", "secret_env": "LIFECYCLED_PIPELINE_SECRET",
        "events": ["model.update_requested", "model.unload_requested", "model.retired"]}}),
}


def comment(text: str, indent: str) -> list[str]:
    if not text:
        return []
    # room for the "# " of a commented example around it
    return [indent + "# " + line
            for line in textwrap.wrap(text, WIDTH - len(indent) - 4, break_on_hyphens=False)]


def section_lines(model: type[BaseModel], given: dict[str, Any] | None, indent: str,
                  path: str) -> list[str]:
    """A section's keys: each with its description as a comment, then ``key: value``; values
    from ``given`` (an example) where it has them, else the defaults."""
    out: list[str] = []
    types_ = hints(model)
    for name, field in model.model_fields.items():
        here = f"{path}.{name}" if path else name
        out += comment(description(model, name), indent)
        out += key_lines(name, types_[name], field.default, given, indent, here)
    return out


def key_lines(name: str, hint: Any, default: Any, given: dict[str, Any] | None, indent: str,
              path: str) -> list[str]:
    section = section_of(hint)
    if path in EXAMPLES:
        live, example = EXAMPLES[path]
        lines = [f"{indent}{name}:", *collection_lines(section, example, indent + "  ", path)]
        if live:
            return lines
        return ([f"{indent}{name}: {yaml_value(plain(hint, default))}"]
                + [f"{indent}# {line[len(indent):]}" for line in lines])
    value = given.get(name, default) if given is not None else default
    if section is not None and section[0] in ("one", "optional") and value is not None:
        # an example's part is written as in the file; a default is turned into that form
        sub = value if isinstance(value, dict) else plain(hint, value)
        return [f"{indent}{name}:", *section_lines(section[1], sub, indent + "  ", path)]
    if given is not None and name in given:
        return [f"{indent}{name}: {yaml_value(given[name])}"]
    return [f"{indent}{name}: {yaml_value(plain(hint, default))}"]


def collection_lines(section: tuple[str, type[BaseModel]] | None, example: Any, indent: str,
                     path: str) -> list[str]:
    assert section is not None, path
    kind, model = section
    if kind == "list":
        out = []
        for item in example:
            lines = section_lines(model, item, indent + "  ", path + "[]")
            first = next(i for i, line in enumerate(lines) if not line.lstrip().startswith("#"))
            lines[first] = indent + "- " + lines[first][len(indent) + 2:]
            out += lines
        return out
    if kind == "mapping":
        out = []
        for key, item in example.items():
            out.append(f"{indent}{key}:")
            out += section_lines(model, item, indent + "  ", path + ".<name>")
        return out
    return section_lines(model, example, indent, path)


def shipped_config() -> str:
    lines = HEADER.rstrip("\n").split("\n")
    types_ = hints(Settings)
    for name, field in Settings.model_fields.items():
        lines.append("")
        lines += comment(description(Settings, name), "")
        lines += key_lines(name, types_[name], field.default, None, "", name)
    return "\n".join(lines) + "\n"


# --- docs/reference/configuration.md -------------------------------------------------------------

def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def default_text(key: Key) -> str:
    if key.required:
        return "required"
    if section_of(key.hint) and key.default is not None and not isinstance(key.default, tuple | dict):
        return ""
    value = plain(key.hint, key.default)
    if value in ({}, []) and section_of(key.hint):
        return "none"
    return f"`{yaml_value(value)}`"


def config_reference() -> str:
    out = ["# Configuration keys", "",
           "Generated from the settings schema (`python -m devtools.reference`); a test fails "
           "when this page and the code differ. Every key of `lifecycled.yaml`, its type, its "
           "default and what it does; the same descriptions are the comments of the shipped "
           "`config/lifecycled.yaml`. Durations are written `90s`, `5m`, `1h30m`, `7d`, "
           "`80ms`; sizes `512MiB`, `2GB`; ratios `0.8` or `\"80%\"`. `<name>` stands for a "
           "name you choose (a model, an endpoint); `[]` for each item of a list. See "
           "[Configuration](../configuration.md) for how the file is found and checked.", ""]
    for name in Settings.model_fields:
        out += [f"## `{name}`", "", description(Settings, name), "",
                "| Key | Type | Default | Description |", "|---|---|---|---|"]
        for key in walk(Settings):
            if key.path == name or not key.path.startswith((name + ".", name + "[")):
                continue
            kind = type_text(key.hint) + key.limits
            out.append(f"| `{key.path}` | {cell(kind)} | {cell(default_text(key))} "
                       f"| {cell(key.description)} |")
        out.append("")
    return "\n".join(out)


# --- docs/reference/cli.md -----------------------------------------------------------------------

def parsers(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
            ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield words, parser
    for action in parser._actions:  # argparse has no public walk of its subcommands
        choices = action.choices
        if isinstance(choices, dict):  # a subcommand action: word -> parser
            seen: set[int] = set()
            for word, child in choices.items():
                if id(child) not in seen:
                    seen.add(id(child))
                    yield from parsers(child, (*words, word))


def cli_reference() -> str:
    from lifecycled.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)  # argparse wraps to the terminal's width
    try:
        out = ["# Command line", "",
               "Generated from the parser (`python -m devtools.reference`); a test fails when "
               "this page and the code differ. Each command's `--help`, as "
               "`lifecycled COMMAND --help` prints it. See [The command line](../cli.md) for "
               "exit codes, JSON output and the audit actor.", ""]
        for words, parser in parsers(build_parser()):
            title = " ".join(("lifecycled", *words))
            out += [f"## `{title}`", "", "```text", parser.format_help().rstrip(), "```", ""]
        return "\n".join(out)
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


# --- docs/reference/metrics.md -------------------------------------------------------------------

def metrics_reference() -> str:
    from lifecycled.exporter.catalogue import CATALOGUE

    out = ["# Metrics", "",
           "Generated from the exporter's catalogue (`python -m devtools.reference`); a test "
           "fails when this page and the code differ, and another when the exporter yields a "
           "family the catalogue does not hold. Every name is a contract used by the shipped "
           "dashboards and alert rules. Unknown values are absent, never 0. Labels `model`, "
           "`version` are written *mv*. Prometheus adds `job` and `instance` when it scrapes; "
           "no family has labels of those names. See [Operations](../operations.md#metrics) "
           "for how `/metrics` is served.", ""]
    for group, entries in CATALOGUE.groups().items():
        out += [f"## {group}", "", "| Metric | Type | Unit | Labels | Help |", "|---|---|---|---|---|"]
        for m in entries:
            labels = ", ".join(m.labels)
            labels = labels.replace("model, version", "mv")
            out.append(f"| `{m.exposed}` | {m.type} | {m.unit or ''} | {labels} | {cell(m.help)} |")
        out.append("")
    return "\n".join(out)


# --- writing and checking ------------------------------------------------------------------------

def outputs() -> dict[Path, str]:
    return {
        ROOT / "config" / "lifecycled.yaml": shipped_config(),
        ROOT / "docs" / "reference" / "configuration.md": config_reference(),
        ROOT / "docs" / "reference" / "cli.md": cli_reference(),
        ROOT / "docs" / "reference" / "metrics.md": metrics_reference(),
    }


def stale() -> list[Path]:
    """The generated files whose content differs from what the code gives now."""
    return [path for path, text in outputs().items()
            if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say which files are stale")
    args = parser.parse_args(argv)
    if args.check:
        old = stale()
        for path in old:
            print(f"stale: {path.relative_to(ROOT)} (python -m devtools.reference)", file=sys.stderr)
        return 1 if old else 0
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
