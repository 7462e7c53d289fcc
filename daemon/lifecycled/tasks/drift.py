"""Drift checks: read the samples, reuse the cached reference profile, judge every feature."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lifecycled.core.columns import label_text, text
from lifecycled.core.drift import DriftResult, compare, compare_histogram, judge, result_to_json
from lifecycled.core.histogram import Histogram, from_cumulative, from_intervals
from lifecycled.core.profile import ReferenceProfile, build_profile
from lifecycled.core.segments import OTHER, label, masks, top_values
from lifecycled.domain import FROZEN, DriftPolicy, ModelRef, Severity, Status
from lifecycled.errors import InputError, SourceError
from lifecycled.sources.files import DEFAULT_TIMEOUT, expand
from lifecycled.sources.profiles import PROFILE_DIR, Loaded, cached_profile
from lifecycled.sources.reader import Reader
from lifecycled.sources.samples import Sample, select
from lifecycled.store.results import add_drift_result, drift_taken_on
from lifecycled.store.traces import frozen_reference, frozen_refs, traced_counts, traced_rows
from lifecycled.units import duration_text

if TYPE_CHECKING:  # a type only: ``lifecycled drift`` on two files imports no client
    from lifecycled.context import Context

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DriftInputs:
    """Where the samples are and which columns to judge."""

    reference: str
    current: str
    features: Sequence[str] | None = None
    categorical: Sequence[str] = ()
    timestamp_column: str | None = None
    window: float | None = None
    newest_rows: int | None = None
    exclude: Sequence[str] = ()
    timeout: float = DEFAULT_TIMEOUT  # each file operation on an object store
    segment_by: Sequence[str] = ()  # also judged per value of these columns (core.segments)
    version: tuple[str, str] | None = None  # (column, version): the current rows of one version
    segment_top: int = 10
    # a feature the reference lacks is the caller's typo (InputError), not a schema break: the
    # command line's --features
    strict_features: bool = False


@dataclass(frozen=True)
class DriftCheck:
    result: DriftResult
    reference_files: tuple[str, ...]
    current_files: tuple[str, ...]
    current_rows: int
    profile_cached: bool
    segments: tuple[dict[str, Any], ...] = ()


def check_drift(inputs: DriftInputs, settings: DriftPolicy, *, cache_dir: Path | None,
                now: float, progress: Progress | None = None,
                ahead: ReadAhead | None = None, reader: Reader | None = None) -> DriftCheck:
    """Run one drift check; raises SourceError when a sample cannot be read. ``ahead`` may hold
    the current sample and the cached profile already read (``ReadAhead``); ``reader`` reads
    the files (``Context.reader``)."""
    reader = reader or Reader()
    reference_files = expand(inputs.reference, timeout=inputs.timeout)
    exclude = [inputs.timestamp_column] if inputs.timestamp_column else []

    def build() -> ReferenceProfile:
        columns = reader.sample(inputs.reference, timeout=inputs.timeout).columns
        return build_profile(select(columns, exclude), inputs.categorical, bins=settings.bins)

    read = ahead.take(inputs, now) if ahead is not None else None
    profile, cached = cached_profile(cache_dir, reference_files, settings.bins,
                                     inputs.categorical, build,
                                     loaded=read.profile if read is not None else None,
                                     load=reader.load_profile)
    if inputs.strict_features and inputs.features:
        unknown = [name for name in inputs.features if name not in profile.features]
        if unknown:
            raise InputError(f"--features: no column {', '.join(unknown)} in the reference; "
                             f"its columns: {', '.join(sorted(profile.features))}")
    current = read.sample if read is not None and read.sample is not None else \
        read_current(reader, inputs, now)
    judged = select(current.columns, exclude)
    rows = current.rows
    if inputs.version is not None:
        column, version = inputs.version
        if column not in judged:
            raise SourceError(inputs.current, f"no version column {column!r}")
        mine = label_text(judged[column]) == version
        judged, rows = {k: v[mine] for k, v in judged.items()}, int(mine.sum())
    result = compare(profile, judged, settings,
                     features=inputs.features, categorical=inputs.categorical, progress=progress,
                     exclude=inputs.exclude)
    segments: tuple[dict[str, Any], ...] = ()
    if inputs.segment_by:
        reference = select(reader.sample(inputs.reference, timeout=inputs.timeout).columns,
                           exclude)
        segments = tuple(segment_drift(reference, judged, inputs, settings))
    return DriftCheck(result, tuple(str(f) for f in reference_files), current.files, rows,
                      cached, segments)


def read_current(reader: Reader, inputs: DriftInputs, now: float) -> Sample:
    return reader.sample(inputs.current, timestamp_column=inputs.timestamp_column,
                         window=inputs.window, newest_rows=inputs.newest_rows, now=now,
                         timeout=inputs.timeout)


@dataclass(frozen=True)
class Read:
    """What a read ahead has for a check: its current sample (None: the check reads it) and
    its cached reference profile (None: the check loads or builds it)."""

    sample: Sample | None
    profile: Loaded | None


class ReadAhead:
    """The drift pass reads the next model's current sample, and loads its cached reference
    profile, in a thread while this model is checked (the read is about two fifths of the
    engine's cost, and pyarrow and numpy let go of the interpreter). One read at a time, and
    at most two kept (the one the check is about to take, the next one), so memory holds a
    bounded number of models' data. A sample read ahead is used only if its local files'
    signatures, taken before the read, still hold when the check asks for it (the stored
    ``inputs_key`` must describe what was judged); files behind a URL, a read that failed or a
    changed file: the check reads for itself. A profile is used only if it came from the file
    the check's own key names (``cached_profile``)."""

    KEPT = 2

    def __init__(self, cache_dir: Path, reader: Reader) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drift-read-ahead")
        self._pending: list[tuple[DriftInputs, float, Future[Any]]] = []
        self._cache_dir, self._reader = cache_dir, reader

    def start(self, inputs: DriftInputs, now: float, bins: int) -> None:
        self._pending.append((inputs, now, self._pool.submit(self._read, inputs, now, bins)))
        while len(self._pending) > self.KEPT:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        # not started yet: it never runs; running: its result is let go
        self._pending.pop(0)[2].cancel()

    def _read(self, inputs: DriftInputs, now: float, bins: int
              ) -> tuple[list[str | None] | None, Read]:
        profile = None
        with contextlib.suppress(SourceError, OSError):  # the check meets it and says so
            profile = self._reader.load_cached(
                self._cache_dir, expand(inputs.reference, timeout=inputs.timeout), bins,
                inputs.categorical)
        signatures = _signatures(self._reader, inputs)
        if signatures is None:
            return None, Read(None, profile)
        try:
            return signatures, Read(read_current(self._reader, inputs, now), profile)
        except Exception:  # the check reads again and reports the problem itself
            return None, Read(None, profile)

    def take(self, inputs: DriftInputs, now: float) -> Read | None:
        """What was read ahead for ``inputs`` at ``now``, its sample only if it is still what
        the files hold; reads ahead of models passed over (another replica claimed them) are
        let go."""
        found = next((i for i, (them, at, _) in enumerate(self._pending)
                      if them == inputs and at == now), None)
        if found is None:
            return None
        future = self._pending[found][2]
        for _ in range(found + 1):
            self._pending.pop(0)
        try:
            signatures, read = future.result()
        except Exception:  # the check reads again and reports the problem itself
            return None
        if signatures is None or signatures != _signatures(self._reader, inputs):
            return Read(None, read.profile)
        return read

    def close(self) -> None:
        while self._pending:
            self._drop_oldest()
        self._pool.shutdown(wait=True)


def _signatures(reader: Reader, inputs: DriftInputs) -> list[str | None] | None:
    try:
        found = [reader.signature(f) for f in expand(inputs.current, timeout=inputs.timeout)]
    except (SourceError, OSError):
        return None
    return None if any(s is None for s in found) else found


def segment_drift(reference: Mapping[str, np.ndarray], current: Mapping[str, np.ndarray],
                  inputs: DriftInputs, settings: DriftPolicy) -> Iterator[dict[str, Any]]:
    """The drift of each segment (``core.segments``): the current rows of one value of a
    segment column against the reference rows of the same value, every feature but the segment
    column itself. A segment with too few rows on either side is judged ``unknown``."""
    for column in inputs.segment_by:
        missing = [name for name, sample in (("reference", reference), ("current", current))
                   if column not in sample]
        if missing:
            yield {"segment": label(column, OTHER), "column": column, "value": OTHER,
                   "severity": "unknown",
                   "error": f"no column {column!r} in the {' and '.join(missing)} sample"}
            continue
        now_values, then_values = text(current[column]), text(reference[column])
        chosen = top_values(now_values, inputs.segment_top)
        before = masks(then_values, chosen)
        for value, rows in masks(now_values, chosen).items():
            base = {k: v[before[value]] for k, v in reference.items()}
            profile = build_profile(base, inputs.categorical, bins=settings.bins)
            result = compare(profile, {k: v[rows] for k, v in current.items()}, settings,
                             features=inputs.features, categorical=inputs.categorical,
                             exclude=[*inputs.exclude, column])
            worst = sorted((f for f in result.features if f.judged), key=lambda f: -(f.score or 0))
            yield {"segment": label(column, value), "column": column, "value": value,
                   "current_rows": int(rows.sum()), "reference_rows": int(before[value].sum()),
                   "severity": result.severity.label, "drifted_share": result.drifted_share,
                   "judged": result.judged, "unjudged": len(result.features) - result.judged,
                   "worst_features": [
                       {"feature": f.feature, "score": f.score, "p_value": f.p_value,
                        "severity": f.severity.label if f.severity is not None else None}
                       for f in worst[:5]]}


def drift_inputs(ctx: Context, ref: ModelRef) -> DriftInputs:
    """The configured check of ``ref`` (``{version}`` in a path is its version). Without a
    ``current``, a model with a prediction log (``quality.predictions``) is checked on it: the
    rows of the last ``drift.window`` (else ``quality.window``) by the log's timestamp, every
    column but the id, version, prediction and score columns."""
    config = ctx.settings.drift_config(ref.name)
    model = ctx.settings.model_settings(ref.name)
    quality = model.quality
    log_file = quality.predictions
    if not config.reference or not (config.current or log_file):
        raise InputError(f"{ref}: no drift check configured (set models.{ref.name}.drift.reference "
                         "and .current, or give the model a prediction log: "
                         "quality.predictions)")
    current, timestamp, window = config.current, config.timestamp_column, config.window
    exclude = list(config.exclude or ())
    version = None
    if not current and log_file is not None:
        current, timestamp = log_file.path, log_file.timestamp_column
        window = window or quality.window
        version = (log_file.version_column, ref.version) if log_file.version_column else None
        exclude += [c for c in (log_file.id_column, log_file.version_column,
                                quality.prediction_column, quality.score_column,
                                *quality.score_columns.values()) if c]
    assert current is not None
    return DriftInputs(reference=config.reference.replace("{version}", ref.version),
                       current=current.replace("{version}", ref.version),
                       features=config.features, categorical=config.categorical or (),
                       timestamp_column=timestamp, window=window,
                       newest_rows=config.newest_rows, exclude=tuple(exclude),
                       timeout=ctx.settings.sources.files.timeout,
                       segment_by=model.segment_by, segment_top=model.segment_top,
                       version=version)


def inputs_key(reader: Reader, inputs: DriftInputs, settings: DriftPolicy) -> str | None:
    """What a check's result depends on: the reference's content, the current files' local
    signatures, the columns and the policy. None when it also depends on the time (a window) or
    on files behind a URL, whose changes only their bytes tell."""
    if inputs.window is not None:
        return None
    current = [reader.signature(f) for f in expand(inputs.current, timeout=inputs.timeout)]
    if any(c is None for c in current):
        return None
    reference = [reader.fingerprint(f)
                 for f in expand(inputs.reference, timeout=inputs.timeout)]
    return hashlib.sha256(json.dumps([repr(inputs), repr(settings), reference, current])
                          .encode()).hexdigest()


Looked = tuple[str | None, dict[str, Any] | None]


def unchanged(ctx: Context, ref: ModelRef, inputs: DriftInputs, settings: DriftPolicy
              ) -> Looked:
    """(``inputs_key`` of the check, the last result when it was taken on the same key)."""
    key = inputs_key(ctx.reader, inputs, settings)
    return key, drift_taken_on(ctx.store, ref, key) if key is not None else None


def run_model_drift(ctx: Context, ref: ModelRef, *, now: float, progress: Progress | None = None,
                    reuse_unchanged: bool = False, ahead: ReadAhead | None = None,
                    looked: Looked | None = None) -> tuple[DriftCheck | None, dict[str, Any]]:
    """Run the configured drift check of ``ref`` and store its result. With
    ``reuse_unchanged``, when nothing the last check depended on has changed (``inputs_key``),
    its result is stored again for this pass (``unchanged: true``, no event sent again) and no
    file is read: the check would give the same answer. The check is then None. ``looked`` is
    what ``unchanged`` found when the read ahead was started: a file changed since then changes
    the key the next pass finds, so that pass checks again."""
    ctx.store.get(ref)
    settings = ctx.settings.drift_policy(ref.name)
    source = ctx.settings.drift_config(ref.name).source
    if source in ("triton", "prometheus"):
        check, origin = (check_traced(ctx, ref, settings, now=now, progress=progress)
                         if source == "triton" else check_histogram(ctx, ref, settings, now=now))
        record = {**check_to_json(check, now=now), "source": source, "reference": origin}
        return check, _store_drift(ctx, ref, check, record, settings, now)
    inputs = drift_inputs(ctx, ref)
    if not reuse_unchanged:
        key, last = None, None
    else:
        key, last = looked if looked is not None else unchanged(ctx, ref, inputs, settings)
    if last is not None:
        record = {**last, "checked_at": now, "unchanged": True}
        add_drift_result(ctx.store, ref, record, now=now)
        return None, record
    check = check_drift(inputs, settings, cache_dir=ctx.state_dir / PROFILE_DIR,
                        now=now, progress=progress, ahead=ahead, reader=ctx.reader)
    record = check_to_json(check, now=now)
    if key is not None:
        record["inputs_key"] = key
    return check, _store_drift(ctx, ref, check, record, settings, now)


def _store_drift(ctx: Context, ref: ModelRef, check: DriftCheck, record: dict[str, Any],
                 settings: DriftPolicy, now: float) -> dict[str, Any]:
    """Store a check's record, with model.drift_detected when it reaches the alert severity."""
    events = []
    segments = [{k: s[k] for k in ("segment", "severity", "drifted_share")}
                for s in record.get("segments", [])
                if "error" not in s and Severity.parse(s["severity"]) >= settings.alert_severity]
    if check.result.severity >= settings.alert_severity or segments:
        worst = sorted((f for f in record["features"] if f["judged"]),
                       key=lambda f: -(f["score"] or 0))[:5]
        events.append(("model.drift_detected", {
            "severity": record["severity"], "drifted_share": record["drifted_share"],
            "alert_severity": settings.alert_severity.label,
            "worst_features": [{k: f[k] for k in ("feature", "score", "severity", "statistic",
                                                  "js", "psi")} for f in worst],
            "recommendations": record["recommendations"],
            **({"segments": segments} if segments else {})}))
    add_drift_result(ctx.store, ref, record, now=now, events=events)
    return record


def check_traced(ctx: Context, ref: ModelRef, settings: DriftPolicy, *, now: float,
                 progress: Progress | None = None) -> tuple[DriftCheck, dict[str, Any]]:
    """The drift check of a model whose current rows are Triton's trace samples: the rows of
    the last ``drift.window`` (else the drift schedule's interval) against the reference file,
    or the reference frozen from the traces (none yet: nothing is judged, ``unknown``). Also
    returns where the reference came from."""
    config = ctx.settings.drift_config(ref.name)
    model = ctx.settings.model_settings(ref.name)
    window = config.window or ctx.settings.schedule.drift
    current, rows = traced_rows(ctx.store, ref, since=now - window, newest=config.newest_rows)
    categorical = config.categorical or ()
    reference: dict[str, np.ndarray] | None = None
    if config.reference not in (None, FROZEN):
        pattern = config.reference.replace("{version}", ref.version)
        reference = ctx.reader.sample(pattern, timeout=ctx.settings.sources.files.timeout).columns
        files = tuple(str(f) for f in expand(pattern, timeout=ctx.settings.sources.files.timeout))
        origin: dict[str, Any] = {"file": pattern}
    else:
        frozen = frozen_reference(ctx.store, ref)
        wanted = config.reference_rows or 1000
        if frozen is not None:
            reference = frozen.columns
            origin = {**frozen.origin, "frozen_at": frozen.frozen_at, "rows": frozen.rows}
            files = (f"reference frozen from {frozen.rows} traced rows",)
        else:
            record = ctx.store.get(ref)
            sampled = traced_counts(ctx.store, {ref: record.status_changed_at})[ref]
            origin = {"frozen": None, "sampled": sampled, "wanted": wanted}
            files = (f"reference not frozen yet: {sampled} of {wanted} rows sampled",)
    profile = build_profile(reference or {}, categorical, bins=settings.bins)
    result = compare(profile, current, settings, features=config.features,
                     categorical=categorical, progress=progress, exclude=config.exclude or ())
    segments: tuple[dict[str, Any], ...] = ()
    if model.segment_by and reference is not None:
        inputs = DriftInputs(reference="", current="", features=config.features,
                             categorical=categorical, exclude=tuple(config.exclude or ()),
                             segment_by=model.segment_by, segment_top=model.segment_top)
        segments = tuple(segment_drift(reference, current, inputs, settings))
    return (DriftCheck(result, files, (f"triton traces of the last {duration_text(window)}",),
                       rows, False, segments), origin)


def run_drift(ctx: Context) -> dict[str, Any]:
    """The scheduled drift job: every production model with a configured check (among
    replicas, the models this replica claims: ``Context.share``).

    A model whose samples cannot be read is reported (and its source marked down); the others
    are still checked.
    """
    now = ctx.clock()
    done: dict[str, Any] = {}
    frozen = frozen_refs(ctx.store)
    due = [ref for ref, status in sorted(ctx.store.statuses().items())
           if drift_due(ctx, ref, status, frozen)]
    following = dict(itertools.pairwise(due))
    ahead = ReadAhead(ctx.state_dir / PROFILE_DIR, ctx.reader)
    looked: dict[ModelRef, Looked] = {}
    try:
        for ref in ctx.share("drift", due, hold=0.9 * ctx.settings.schedule.drift):
            if ref in following:
                found = _read_ahead(ctx, following[ref], now, ahead)
                if found is not None:
                    looked[following[ref]] = found
            with ctx.source(f"samples:{ref.name}") as call:
                _, record = run_model_drift(ctx, ref, now=now, reuse_unchanged=True,
                                            ahead=ahead, looked=looked.pop(ref, None))
            done[str(ref)] = ({"error": call.error} if call.failed
                              else {"severity": record["severity"]})
    finally:
        ahead.close()
    return done


def check_histogram(ctx: Context, ref: ModelRef, settings: DriftPolicy, *, now: float
                    ) -> tuple[DriftCheck, dict[str, Any]]:
    """The drift check of a histogram Prometheus holds (``drift.histogram``): its increase over
    the last ``drift.window`` (else the drift schedule's interval) against the same window
    ``reference_offset`` earlier, bucket by bucket. SourceError when Prometheus cannot answer or
    answers something that is not the histogram."""
    config = ctx.settings.drift_config(ref.name)
    histogram = config.histogram
    assert histogram is not None  # the settings refuse source prometheus without one
    window = config.window or ctx.settings.schedule.drift
    labels = {**histogram.matchers, histogram.model_label: ref.name,
              histogram.version_label: ref.version}
    then = now - histogram.reference_offset
    with ctx.prometheus() as prometheus:
        try:
            windows = [histogram_window(prometheus, histogram.metric, labels, end - window, end,
                                        native=histogram.native) for end in (then, now)]
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise SourceError("prometheus", f"{histogram.metric} of {ref}: not a histogram: "
                                            f"{exc}") from exc
    (reference, reference_exact), (current, current_exact) = windows
    verdict = compare_histogram(histogram.metric, reference, current, settings)
    span = duration_text(window)
    origin = {"metric": histogram.metric, "labels": labels, "window": window,
              "reference_at": then, "current_at": now,
              # a counter reset inside a window: PromQL's increase(), extrapolated to its ends
              "extrapolated": [side for side, exact in (("reference", reference_exact),
                                                        ("current", current_exact)) if not exact]}
    return (DriftCheck(judge([verdict], settings),
                       (f"prometheus {histogram.metric}, the {span} ending "
                        f"{duration_text(histogram.reference_offset)} ago",),
                       (f"prometheus {histogram.metric}, the last {span}",),
                       round(current.total), False), origin)


def histogram_window(prometheus: Any, metric: str, labels: Mapping[str, str], start: float,
                     end: float, *, native: bool) -> tuple[Histogram, bool]:
    """What a histogram counted between ``start`` and ``end``: its cumulative counts at the
    end less those at the start, exactly (True); where a count went back (a counter reset) or
    the buckets changed, PromQL's ``increase`` over the window instead (False)."""
    from lifecycled.sources.prometheus import (
        histogram_query,
        parse_classic_histogram,
        parse_native_histogram,
    )

    plain = histogram_query(metric, labels, native=native)
    at_end, at_start = (prometheus.query(plain, at=at) for at in (end, start))
    if native:
        late = {(lo, hi): n for lo, hi, n in parse_native_histogram(at_end)}
        early = {(lo, hi): n for lo, hi, n in parse_native_histogram(at_start)}
        if set(early) <= set(late) and all(late[k] >= early.get(k, 0.0) for k in late):
            return from_intervals([(lo, hi, n - early.get((lo, hi), 0.0))
                                   for (lo, hi), n in late.items()]), True
    else:
        late_edges, late_counts = parse_classic_histogram(at_end)
        start_edges, start_counts = parse_classic_histogram(at_start)
        before = dict(zip(start_edges, start_counts, strict=True))
        if set(before) <= set(late_edges) and all(
                n >= before.get(e, 0.0) for e, n in zip(late_edges, late_counts, strict=True)):
            return from_cumulative(late_edges, [n - before.get(e, 0.0) for e, n in
                                                zip(late_edges, late_counts, strict=True)]), True
    grown = prometheus.query(histogram_query(metric, labels, end - start, native=native), at=end)
    if native:
        return from_intervals(parse_native_histogram(grown)), False
    return from_cumulative(*parse_classic_histogram(grown)), False


def drift_due(ctx: Context, ref: ModelRef, status: Status, frozen: Set[ModelRef]) -> bool:
    """Is ``ref`` checked by the drift pass? A production version with a configured check; a
    live version (production or staging) whose rows are Triton's traces or a Prometheus
    histogram, configured or not (``defaults.drift.source: triton`` watches every model
    discovery finds)."""
    config = ctx.settings.drift_config(ref.name)
    if config.source == "triton" and config.reference in (None, FROZEN):
        # nothing to judge against until the reference is frozen: no verdict, and no alert
        # that it is unknown while a quiet model's first rows are still being sampled
        # (``lifecycled reference show`` tells how far it is)
        return status in (Status.PRODUCTION, Status.STAGING) and ref in frozen
    if config.source in ("triton", "prometheus"):
        return status in (Status.PRODUCTION, Status.STAGING)
    return (status == Status.PRODUCTION and ref.name in ctx.settings.models
            and ctx.settings.models[ref.name].drift.reference is not None)


def _read_ahead(ctx: Context, ref: ModelRef, now: float, ahead: ReadAhead) -> Looked | None:
    """Start reading the current sample of ``ref``, the model checked next, unless its check
    will not read it (nothing changed) or its configuration is in error (it is reported when
    its turn comes, and None is returned). Among replicas another may claim it: the read is
    then not used. Returns what ``unchanged`` found, for the check to use."""
    try:
        inputs = drift_inputs(ctx, ref)
        settings = ctx.settings.drift_policy(ref.name)
        found = unchanged(ctx, ref, inputs, settings)
        if found[1] is None:
            ahead.start(inputs, now, settings.bins)
    except (InputError, SourceError, OSError):
        return None
    return found


def check_to_json(check: DriftCheck, *, now: float) -> dict[str, Any]:
    """The stored/printed form of a drift check: the result plus where it came from."""
    return {**result_to_json(check.result), "checked_at": now,
            "reference_files": list(check.reference_files),
            "current_files": list(check.current_files), "current_rows": check.current_rows,
            "profile_cached": check.profile_cached,
            **({"segments": list(check.segments)} if check.segments else {})}
