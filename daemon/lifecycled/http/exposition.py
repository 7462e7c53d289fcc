"""/metrics: the text exposition of the registry, rendered once per state change and shared
by every scrape until it is stale."""

from __future__ import annotations

import gzip
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from lifecycled.errors import LifecycledError

log = logging.getLogger(__name__)
EXPOSITION_MAX_AGE = 15.0  # seconds a rendered /metrics body is served without a state change
FRESH_WAIT = 0.1  # seconds a scrape waits for a render in flight before serving the previous one


def render_locally(registry: CollectorRegistry) -> Callable[[], tuple[bytes, bytes]]:
    """Render ``registry`` in this process: (plain, gzip)."""
    def render() -> tuple[bytes, bytes]:
        plain = text_exposition(registry)
        return plain, gzip.compress(plain, 6)
    return render


_TYPES = {"counter": ("_total", "counter"), "info": ("_info", "gauge"), "stateset": ("", "gauge"),
          "gaugehistogram": ("", "histogram"), "unknown": ("", "untyped")}


_OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")  # moved to gauges of their own


def _label_value(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
    return value


def text_exposition(registry: CollectorRegistry) -> bytes:
    """``generate_latest(registry)``, byte for byte (tested), at a fraction of its cost: a
    fleet's exposition is hundreds of thousands of samples, and prometheus_client validates and
    escapes every label name of every sample one character at a time. Here each label name and
    metric name is checked once per render (and escaped the library's way if it must be), label
    values are escaped only when they hold a character that needs it, and a float's text is
    worked out once per distinct value."""
    from prometheus_client.openmetrics import exposition as openmetrics
    from prometheus_client.utils import floatToGoString

    labels_seen: dict[str, str] = {}
    metrics_seen: dict[str, str] = {}
    numbers: dict[float, str] = {}

    def label_name(label: str) -> str:
        found = labels_seen.get(label)
        if found is None:
            found = labels_seen[label] = openmetrics.escape_label_name(label)
        return found

    def metric_name(name: str) -> str:
        found = metrics_seen.get(name)
        if found is None:
            found = metrics_seen[name] = openmetrics.escape_metric_name(name)
        return found

    def number(value: float) -> str:
        found = numbers.get(value)
        if found is None:
            found = floatToGoString(value)
            if value == value and value != 0:  # not NaN (never equal to itself), not ±0
                numbers[value] = found
        return found

    def line(sample: Any) -> str:
        name = metric_name(sample.name)
        if sample.labels:
            labels = ",".join([f'{label_name(k)}="{_label_value(v)}"'
                               for k, v in sorted(sample.labels.items())])
            name = f"{name}{{{labels}}}"
        stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
        return f"{name} {number(sample.value)}{stamp}\n"

    output: list[str] = []
    for metric in registry.collect():
        suffix, kind = _TYPES.get(metric.type, ("", metric.type))
        shown = metric_name(metric.name + suffix)
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        output.append(f"# HELP {shown} {doc}\n# TYPE {shown} {kind}\n")
        moved: dict[str, list[str]] = {}
        special = {metric.name + s: s for s in _OPENMETRICS_ONLY}
        for sample in metric.samples:
            extra = special.get(sample.name)
            if extra is None:
                output.append(line(sample))
            else:
                moved.setdefault(extra, []).append(line(sample))
        for extra, lines in sorted(moved.items()):
            gauge = metric_name(metric.name + extra)
            output.append(f"# HELP {gauge} {doc}\n# TYPE {gauge} gauge\n")
            output.extend(lines)
    return "".join(output).encode("utf-8")


class Exposition:
    """The /metrics body, shared by every scraper.

    A scrape that finds it out of date (a state change announced by ``invalidate``, or older than
    ``max_age`` seconds) starts one render in the background and waits for it at most
    ``fresh_wait`` seconds, then serves the newest bytes there are; scrapes meanwhile are served
    the previous render at once. So the cost of scraping does not grow with the number of
    scrapers, a small fleet always sees the state of the moment, and a fleet whose render takes
    seconds never holds a scrape for long. Only a scrape with nothing rendered yet, or after a
    failed render, waits for the whole render (and a failure is a 500).

    A render starts no sooner after the previous one ended than that one took, so rendering
    takes at most half of a CPU however often the state changes: a fleet that renders in 10 ms
    is rendered afresh 10 ms after a change, one that takes 4 s is at most 8 s behind.
    """

    def __init__(self, render: Callable[[], tuple[bytes, bytes]],
                 max_age: float = EXPOSITION_MAX_AGE, fresh_wait: float = FRESH_WAIT,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.render = render
        self.max_age = max_age
        self.fresh_wait = fresh_wait
        self.monotonic = monotonic
        self.renders = 0  # renders finished, successful or not
        self._changed = threading.Condition()
        self._bodies: tuple[bytes, bytes] | None = None
        self._error = "no exposition rendered yet"
        self._dirty = True
        self._rendering = False
        self._at = -math.inf
        self._next = -math.inf  # when the next render may start

    def invalidate(self) -> None:
        with self._changed:
            self._dirty = True

    def _stale(self) -> bool:
        return self._dirty or self.monotonic() - self._at > self.max_age

    def ready(self) -> tuple[bytes, bytes] | None:
        """The bodies to serve without waiting: up to date, or the previous ones while another
        scrape's render is in flight or the next may not start yet. None when this scrape must
        call ``bodies``."""
        with self._changed:
            if self._bodies is not None and (self._rendering or not self._stale()
                                             or self._next - self.monotonic() > self.fresh_wait):
                return self._bodies
            return None

    def bodies(self) -> tuple[bytes, bytes]:
        """(plain, gzip) exposition; LifecycledError when the last render failed."""
        with self._changed:
            pause = self._next - self.monotonic()
            if not self._rendering and self._stale() and self._bodies is not None and pause > 0:
                if pause > self.fresh_wait:  # too soon after the last render: serve that one
                    return self._bodies
                self._changed.wait(pause)
            if not self._rendering and self._stale():
                self._rendering, self._dirty = True, False  # a change meanwhile: dirty again
                threading.Thread(target=self._render, name="exposition", daemon=True).start()
            if self._rendering:
                done = self.renders + 1
                self._changed.wait_for(lambda: self.renders >= done,
                                       None if self._bodies is None else self.fresh_wait)
            if self._bodies is None:
                raise LifecycledError(self._error)
            return self._bodies

    def _render(self) -> None:
        bodies: tuple[bytes, bytes] | None = None
        started = self.monotonic()
        try:
            bodies = self.render()
        except LifecycledError as exc:
            error = str(exc)
        except Exception as exc:  # a collector bug: logged with its traceback, a 500 until fixed
            log.exception("rendering /metrics failed")
            error = f"{type(exc).__name__}: {exc}"
        with self._changed:
            self._rendering = False
            self.renders += 1
            ended = self.monotonic()
            self._next = ended + (ended - started)
            if bodies is None:
                self._bodies, self._error, self._dirty = None, error, True
            else:
                self._bodies, self._at = bodies, self.monotonic()
            self._changed.notify_all()

