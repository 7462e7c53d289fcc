"""Prometheus rules from one source (``rules.yml`` beside this file): the Triton recording rules
and lifecycled's alerts, rendered with the selectors, runbook links and file format of the user's
environment, and the worst-case time to alert of each alert computed from what feeds it."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lifecycled.errors import InputError

SOURCE = Path(__file__).with_name("rules.yml")
DEFAULT_SELECTOR = 'job="lifecycled"'
DEFAULT_TRITON_SELECTOR = 'job="triton"'
DEFAULT_RUNBOOK = "https://lifecycled.invalid/runbooks/#%s"  # the manual's runbooks page
FORMATS = ("rules", "prometheusrule")
FILE_NAMES = {"rules": "lifecycled.yml", "prometheusrule": "lifecycled-prometheusrule.yaml"}

# A series name in an expression: ours, or Triton's (not the tail of a recorded name such as
# model_version:nv_inference_count:rate5m, whose labels the recording rule already chose).
_SERIES = re.compile(r"(?<![\w:])(lifecycled_[a-z0-9_]+|nv_[a-z0-9_]+)\b(\{\s*\}?)?")
_MATCHER = r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\\n]|\\.)*"\s*'
_SELECTOR = re.compile(rf"(?:{_MATCHER}(?:,{_MATCHER})*)?,?\s*")
_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Environment:
    """Where the rules run: which series are lifecycled's and Triton's, where runbooks live."""

    selector: str = DEFAULT_SELECTOR
    triton_selector: str = DEFAULT_TRITON_SELECTOR
    runbook_url_pattern: str = DEFAULT_RUNBOOK

    def __post_init__(self) -> None:
        for option, value in (("--selector", self.selector),
                              ("--triton-selector", self.triton_selector),
                              ("--runbook-url-pattern", self.runbook_url_pattern)):
            if any(ord(c) < 32 or ord(c) == 127 for c in value):
                raise InputError(f"{option} {value!r}: control characters (a line break, say) "
                                 "are not allowed")
        for option, value in (("--selector", self.selector),
                              ("--triton-selector", self.triton_selector)):
            if not _SELECTOR.fullmatch(value):
                raise InputError(f'{option} {value!r} is not a list of label matchers such as '
                                 f'job="lifecycled",env=~"prod|staging"')
            for pattern in _REGEX_VALUES.findall(value):
                problem = _regex_problem(pattern)
                if problem:
                    raise InputError(f"{option}: {pattern!r} is not a regular expression "
                                     f"Prometheus accepts: {problem}")
        if self.runbook_url_pattern.count("%s") != 1 or "%" in self.runbook_url_pattern.replace(
                "%s", ""):
            raise InputError(f"--runbook-url-pattern {self.runbook_url_pattern!r} needs exactly "
                             "one %s (the alert name) and no other %")


_REGEX_VALUES = re.compile(r'[=!]~\s*("(?:[^"\\\n]|\\.)*")')
_NOT_RE2 = re.compile(r"\(\?[=!<]|\\[1-9]")  # lookarounds and back-references: not in RE2


def _regex_problem(quoted: str) -> str | None:
    """Why the quoted matcher value is not a regular expression Prometheus (RE2) compiles."""
    try:
        pattern = json.loads(quoted)
    except ValueError:
        return "not a valid quoted string"
    if _NOT_RE2.search(pattern):
        return "lookarounds and back-references are not RE2"
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    return None


def source() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))
    return data


def select(expr: str, selector: str, triton_selector: str) -> str:
    """``expr`` with the selector added to every lifecycled_* series and the Triton selector to
    every nv_* series, merged into a series' own matchers where it has some."""

    def add(match: re.Match[str]) -> str:
        name = match.group(1)
        chosen = (selector if name.startswith("lifecycled_") else triton_selector).strip(" ,")
        if not chosen:  # no selector: the series as written, its own matchers kept
            return name + (match.group(2) or "")
        braces = match.group(2) or "{}"
        return name + "{" + chosen + ("}" if braces.endswith("}") else ", ")

    return _SERIES.sub(add, expr)


def _for_seconds(text: str) -> float:
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return float(sum(int(n) * _UNIT[u] for n, u in parts))


def groups(env: Environment) -> list[dict[str, Any]]:
    """The rule groups of ``source()`` for ``env``, as Prometheus reads them."""
    rendered = []
    for group in source()["groups"]:
        rules = []
        for rule in group["rules"]:
            rule = {k: v for k, v in rule.items() if k != "time_to_alert"}
            rule["expr"] = select(rule["expr"], env.selector, env.triton_selector)
            if "alert" in rule:
                rule["annotations"] = {**rule["annotations"], "runbook_url":
                                       env.runbook_url_pattern.replace("%s", rule["alert"])}
            rules.append(rule)
        rendered.append({**group, "rules": rules})
    return rendered


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                   style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def render(env: Environment | None = None, fmt: str = "rules") -> str:
    """The rules as a Prometheus rule file, or as a prometheus-operator ``PrometheusRule``."""
    env = env or Environment()
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    body: dict[str, Any] = {"groups": groups(env)}
    if fmt == "prometheusrule":
        body = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
                "metadata": {"name": "lifecycled",
                             "labels": {"app.kubernetes.io/name": "lifecycled"}},
                "spec": body}
    header = (f"# lifecycled's Prometheus rules, rendered by `lifecycled alerting render"
              f" --selector '{env.selector}' --triton-selector '{env.triton_selector}'"
              f" --runbook-url-pattern '{env.runbook_url_pattern}'"
              + (f" --format {fmt}" if fmt != "rules" else "") + "`.\n"
              "# Do not edit: render again with the selectors of your environment.\n")
    return header + yaml.dump(body, Dumper=_Dumper, sort_keys=False, width=100,
                              allow_unicode=True)


@dataclass(frozen=True)
class TimeToAlert:
    alert: str
    fed_by: str
    seconds: float  # the worst case
    hold: float  # the alert's for (scaled): no sooner than this after the fault


def time_to_alert(intervals: Mapping[str, float], scrape: float = 60.0,
                  evaluation: float = 60.0, for_scale: float = 1.0) -> list[TimeToAlert]:
    """The worst case from a fault to a firing alert: the passes of the tasks that feed the alert
    (each may have just missed the fault), the scrapes that bring the new values to Prometheus,
    one rule evaluation to see them, then the alert's ``for`` (times ``for_scale``) rounded up to
    whole evaluations (it fires at the first evaluation after ``for`` has elapsed)."""
    found = []
    for group in source()["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            feed = rule["time_to_alert"]
            passes = sum(n * intervals[task] for task, n in feed["passes"].items())
            hold = _for_seconds(rule["for"]) * for_scale
            seconds = (passes + feed.get("scrapes", 1) * scrape + evaluation
                       + math.ceil(hold / evaluation) * evaluation)
            found.append(TimeToAlert(rule["alert"], feed["fed_by"], seconds, hold))
    return found


def duration_text(seconds: float) -> str:
    """``seconds`` for people: 1 h 7 m, 4 m, 7 m 10 s."""
    whole = round(seconds)
    parts = [(whole // 86400, "d"), (whole % 86400 // 3600, "h"), (whole % 3600 // 60, "m"),
             (whole % 60, "s")]
    return " ".join(f"{n} {u}" for n, u in parts if n) or "0 s"


def time_to_alert_table(intervals: Mapping[str, float]) -> str:
    """The manual's table (docs/alerting.md): each alert, what feeds it and its worst case with
    ``intervals``."""
    rows = ["| Alert | Fed by | Task passes | for | Worst case |", "|---|---|---|---|---|"]
    alerts = {r["alert"]: r for g in source()["groups"] for r in g["rules"] if "alert" in r}
    for item in time_to_alert(intervals):
        rule = alerts[item.alert]
        times = "\N{MULTIPLICATION SIGN}"
        passes = " + ".join((f"{n} {times} " if n > 1 else "")
                            + f"{task} {duration_text(intervals[task])}"
                            for task, n in rule["time_to_alert"]["passes"].items()) or "none"
        rows.append(f"| {item.alert} | {item.fed_by} | {passes} | {rule['for']} | "
                    f"{duration_text(item.seconds)} |")
    return "\n".join(rows) + "\n"
