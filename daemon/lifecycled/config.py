"""Loading only: YAML files -> one typed, validated, immutable Settings object
(``lifecycled.settings``); every problem reported at once.

``load_settings(path)`` reads the file (and ``models.d/*.yaml`` beside it) and returns
Settings or raises ConfigError listing each problem with its key path. ``parse_settings(mapping)``
is the pure part, for tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lifecycled.errors import ConfigError
from lifecycled.settings import Settings

DEFAULT_PATHS = (Path("/etc/lifecycled/lifecycled.yaml"), Path("config/lifecycled.yaml"))
ENV_CONFIG = "LIFECYCLED_CONFIG"


# --- error formatting ---------------------------------------------------------------------------

_SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey")


def format_error(error: Mapping[str, Any], prefix: tuple[str | int, ...] = ()) -> str:
    loc = tuple(prefix) + tuple(error["loc"])
    # Drop pydantic's internal union/function tags such as 'function-after[...]'.
    path = ".".join(str(part) for part in loc if not str(part).startswith(("function-", "tagged")))
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        if any(word in key.lower() for word in _SECRET_WORDS):
            return (f"{path}: secrets may not be written in the file; "
                    f"use {key}_file or {key}_env")
        return f"{path}: unknown key"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        return f"{path}: {message}" if path else message
    shown = repr(given)
    if len(shown) > 80:  # a long input (a request body's list) is named, not echoed
        shown = shown[:77] + "..."
    return f"{path}: {error['msg'][0].lower()}{error['msg'][1:]}, got {shown}"


def parse_settings(data: Any) -> Settings:
    """Validate a mapping (as loaded from YAML) into Settings, or raise ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError([f"the top level must be a mapping, got {type(data).__name__}"])
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = [format_error(e) for e in exc.errors(include_url=False)]
        raise ConfigError(sorted(dict.fromkeys(problems))) from exc


# --- files --------------------------------------------------------------------------------------


MAX_DOCUMENT_BYTES = 4 * 2**20  # a configuration or registration file
MAX_EXPANDED_NODES = 200_000  # YAML nodes once every alias is expanded (a "billion laughs" guard)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes in ``node`` with aliases expanded; ``sizes`` memoises shared (aliased) nodes, so
    this costs the number of distinct nodes, not the expanded size."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    if isinstance(node, yaml.MappingNode):
        children: list[yaml.Node] = [part for pair in node.value for part in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        children = []
    size = 1 + sum(_expanded_size(child, sizes) for child in children)
    sizes[id(node)] = size
    return size


def _duplicate_keys(node: yaml.Node, where: str) -> list[str]:
    """Each key written twice in one mapping (YAML keeps the last silently), with its line."""
    found: list[str] = []
    seen_nodes: set[int] = set()
    todo = [node]
    while todo:
        current = todo.pop()
        if id(current) in seen_nodes:
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys:
                        found.append(f"{where}:{key.start_mark.line + 1}: key {key.value!r} is "
                                     "written twice in one mapping (YAML would keep the last)")
                    keys.add(key.value)
                todo.extend((key, value))
        elif isinstance(current, yaml.SequenceNode):
            todo.extend(current.value)
    return found


def parse_yaml(text: str, where: str) -> Any:
    """One YAML document with the safe loader, refusing aliases that expand past
    MAX_EXPANDED_NODES and nesting too deep to parse; every problem is a ConfigError."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        distinct: dict[int, int] = {}
        if _expanded_size(node, distinct) > MAX_EXPANDED_NODES:
            if len(distinct) > MAX_EXPANDED_NODES:  # large as written, no alias needed
                raise ConfigError([f"{where}: more than {MAX_EXPANDED_NODES:,} values; split "
                                   "it into several files"])
            raise ConfigError([f"{where}: YAML aliases expand to more than "
                               f"{MAX_EXPANDED_NODES:,} nodes; write the values out"])
        duplicates = _duplicate_keys(node, where)
        if duplicates:
            raise ConfigError(duplicates)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        raise ConfigError([f"{at}: YAML syntax error: {exc.problem or exc.context}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{where}: YAML error: {exc}"]) from exc
    except RecursionError:
        raise ConfigError([f"{where}: nested too deeply to read"]) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml(path: Path) -> Any:
    """Read one YAML file (UTF-8, at most MAX_DOCUMENT_BYTES) with ``parse_yaml``; every problem
    names the file (and line and column for syntax errors)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"]) from exc
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_DOCUMENT_BYTES // 2**20} MiB"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                           f"{exc.start})"]) from None
    return parse_yaml(text, str(path))


def _merge_models_dir(data: dict[str, Any], directory: Path) -> list[str]:
    """Merge ``models.d/*.yaml`` (one model per file, with a ``name`` key) into ``data``."""
    problems: list[str] = []
    models = data.setdefault("models", {})
    if not isinstance(models, dict):
        return problems  # reported by validation
    for file in sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml")):
        try:
            item = read_yaml(file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(f"{file}: must be a mapping with a 'name' key naming the model")
            continue
        item = dict(item)
        name = item.pop("name")
        if name in models:
            problems.append(f"{file}: model {name!r} is already defined in the main file "
                            f"or another models.d file")
            continue
        models[name] = item
    return problems


def resolve_config_path(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """Find the config file: --config, then $LIFECYCLED_CONFIG, then the default locations."""
    if explicit:
        return Path(explicit)
    if environ.get(ENV_CONFIG):
        return Path(environ[ENV_CONFIG])
    for candidate in DEFAULT_PATHS:
        if candidate.exists():
            return candidate
    raise ConfigError(
        [f"no configuration file: pass --config, set ${ENV_CONFIG}, or create one of "
         + ", ".join(str(p) for p in DEFAULT_PATHS)]
    )


def load_settings(path: Path) -> Settings:
    """Load the YAML file at ``path`` and its ``models.d/`` folder into Settings."""
    data = read_yaml(path)
    if data is None:  # a truncated file must never be taken for "the defaults"
        raise ConfigError(["the file is empty: give at least one section (the shipped "
                           "config/lifecycled.yaml shows them all)"], source=str(path))
    if not isinstance(data, dict):
        raise ConfigError([f"the top level must be a mapping, got {type(data).__name__}"],
                          source=str(path))
    daemon = data.get("daemon")
    if isinstance(daemon, dict):
        web = daemon.get("web_config_file")
        if isinstance(web, str) and web and not Path(web).is_absolute():
            daemon["web_config_file"] = str(path.parent / web)  # beside the configuration file
    problems: list[str] = []
    models_dir = path.parent / "models.d"
    if models_dir.is_dir():
        problems = _merge_models_dir(data, models_dir)
    try:
        settings = parse_settings(data)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems, source=str(path)) from exc
    if problems:
        raise ConfigError(problems, source=str(path))
    return settings
