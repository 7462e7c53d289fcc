"""Sampling through Triton's trace extension: for each model whose drift reads ``source:
triton``, switch tracing on (trace level TIMESTAMPS and TENSORS, one request in
``drift.trace_rate``) through the API, read the trace files the server writes, keep their rows
per model version, freeze references from them, and put the settings back when a model is no
longer watched or the daemon stops.

The server writes ``trace_file.0``, ``.1``, ... every ``trace_log_frequency`` traces, for every
traced model into the same files; each file is read once (its content's digest is recorded with
its rows, in one transaction) and then deleted, so the disk holds at most the files written
between two passes. A file cut short is left for the next pass while it may still be written
(``GRACE`` seconds), then its whole records are kept and the cut is reported; a file with
nothing readable is renamed ``*.rejected`` for a person to look at. Each problem is one log line
and a count; nothing else is lost.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycled.context import Context
from lifecycled.domain import FROZEN, ModelRecord, ModelRef, Status
from lifecycled.errors import SourceError
from lifecycled.settings import TritonEndpoint
from lifecycled.sources.traces import TRACE_LEVEL, backlog, decode, renamed, trace_files
from lifecycled.store.serving import serving_states
from lifecycled.store.traces import (
    Watch,
    add_trace_counts,
    add_trace_file,
    drop_watch,
    freeze_reference,
    frozen_refs,
    prune_trace_rows,
    put_watch,
    traced_counts,
    traced_rows,
    watches,
)

log = logging.getLogger(__name__)
LIVE = (Status.PRODUCTION, Status.STAGING)  # versions that serve traffic worth sampling
KEYS = ("trace_level", "trace_rate", "log_frequency")  # the settings lifecycled changes
UNKNOWN_MODEL = "unknown model"  # Triton's answer about a model it has not loaded
GRACE = 30.0  # seconds a file cut short may still be being written
MAX_FILE_BYTES = 256 * 1024 * 1024


@dataclass
class EndpointPass:
    """What one pass did on one endpoint."""

    watched: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    files: int = 0
    requests: int = 0
    rejected: int = 0
    problems: int = 0
    waiting: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"watched": self.watched, "restored": self.restored, "files": self.files,
                "requests": self.requests, "rejected": self.rejected,
                "problems": self.problems, "waiting": self.waiting}


def applied_settings(rate: int, endpoint: TritonEndpoint) -> dict[str, Any]:
    """The trace settings lifecycled gives a watched model."""
    return {"trace_level": list(TRACE_LEVEL), "trace_rate": str(rate),
            "log_frequency": str(endpoint.trace_log_frequency)}


def _applies(current: Mapping[str, Any], applied: Mapping[str, Any]) -> bool:
    return (sorted(current.get("trace_level") or []) == sorted(applied["trace_level"])
            and str(current.get("trace_rate")) == applied["trace_rate"]
            and str(current.get("log_frequency")) == applied["log_frequency"])


def traced_versions(ctx: Context) -> dict[str, dict[ModelRef, ModelRecord]]:
    """Per endpoint with a trace file, the live versions it serves whose drift reads traces."""
    endpoints = {e.name for e in ctx.settings.sources.triton if e.trace_file}
    records = {r.ref: r for r in ctx.store.list_models() if r.status in LIVE}
    found: dict[str, dict[ModelRef, ModelRecord]] = {name: {} for name in endpoints}
    for state in serving_states(ctx.store, states=("ready",)):
        record = records.get(state.ref)
        if state.endpoint in found and record is not None \
                and ctx.settings.drift_config(state.ref.name).source == "triton":
            found[state.endpoint][state.ref] = record
    return found


def run_traces(ctx: Context) -> dict[str, Any]:
    """The scheduled pass (on the leader among replicas: one reader per trace file): per
    endpoint with a trace file, the watches in step with the configuration and the registry,
    then its new files read; then the references due frozen and the old rows let go."""
    now = ctx.clock()
    versions = traced_versions(ctx)
    done: dict[str, Any] = {}
    endpoints = [e for e in ctx.settings.sources.triton if e.trace_file]
    for endpoint in endpoints:
        report = EndpointPass()
        with ctx.source(f"traces:{endpoint.name}") as call:
            try:
                errors = watch_models(ctx, endpoint, versions[endpoint.name], report, now)
            except SourceError as exc:  # no client: the files are read all the same
                errors = [str(exc)]
            consume_files(ctx, endpoint, versions[endpoint.name], report, now)  # local files
            if errors:
                raise SourceError(f"traces:{endpoint.name}", "; ".join(errors))
        done[endpoint.name] = {"error": call.error} if call.failed else report.to_json()
    forget_unconfigured(ctx, {e.name for e in endpoints})
    live = {ref: record for found in versions.values() for ref, record in found.items()}
    pending = freeze_due(ctx, live, now)
    retention = 2 * max([ctx.settings.schedule.drift] + [
        ctx.settings.drift_config(ref.name).window or 0.0 for ref in live])
    prune_trace_rows(ctx.store, older_than=now - retention, keep=pending)
    return done


def watch_models(ctx: Context, endpoint: TritonEndpoint, versions: Mapping[ModelRef, Any],
                 report: EndpointPass, now: float) -> list[str]:
    """Trace the models of ``versions`` at their rate, and put back the settings of the models
    watched before but not now. A model whose settings no longer hold (the server restarted,
    someone changed them) gets them again. Returns the calls that failed (each model on its
    own: one that fails leaves the others, and the files, to be done)."""
    wanted = {ref.name: applied_settings(ctx.settings.drift_config(ref.name).trace_rate or 100,
                                         endpoint) for ref in versions}
    stored = {watch.name: watch for watch in watches(ctx.store, endpoint.name)}
    errors: list[str] = []
    with ctx.triton(endpoint) as client:
        for name, applied in sorted(wanted.items()):
            try:
                if _watch(ctx, client, endpoint, name, applied, stored.get(name), now):
                    report.watched.append(name)
            except SourceError as exc:
                errors.append(str(exc))
        for name, watch in sorted(stored.items()):
            if name in wanted:
                continue
            try:
                restore(client, watch)
            except SourceError as exc:
                if UNKNOWN_MODEL in str(exc).lower():  # unloaded: Triton keeps its settings by name
                    log.info("trace settings restored when the model is loaded again "
                             "endpoint=%s model=%s", endpoint.name, name)
                    continue
                errors.append(str(exc))
                continue
            drop_watch(ctx.store, endpoint.name, name)
            report.restored.append(name)
    return errors


def _watch(ctx: Context, client: Any, endpoint: TritonEndpoint, name: str,
           applied: dict[str, Any], watch: Watch | None, now: float) -> bool:
    """Give model ``name`` the ``applied`` trace settings unless they hold; True if it was
    given them now. The first time, what it had is kept to be put back."""
    current = client.trace_settings(name)
    if watch is not None and watch.applied == applied and _applies(current, applied):
        return False
    if watch is None:
        server = client.trace_settings()
        previous = None if all(current.get(k) == server.get(k) for k in KEYS) \
            else {k: current.get(k) for k in KEYS}
    else:
        previous = watch.previous
        log.info("trace settings applied again endpoint=%s model=%s found=%s", endpoint.name,
                 name, {k: current.get(k) for k in KEYS})
    client.update_trace_settings(name, applied)
    put_watch(ctx.store, Watch(endpoint.name, name, previous, applied,
                               watch.since if watch is not None else now))
    log.info("tracing model endpoint=%s model=%s rate=%s", endpoint.name, name,
             applied["trace_rate"])
    return True


def restore(client: Any, watch: Watch) -> None:
    """Put back what ``watch`` found: the model's own settings, or none (the global ones)."""
    client.update_trace_settings(watch.name, watch.previous or dict.fromkeys(KEYS))
    log.info("trace settings restored endpoint=%s model=%s", watch.endpoint, watch.name)


def consume_files(ctx: Context, endpoint: TritonEndpoint, versions: Mapping[ModelRef, ModelRecord],
                  report: EndpointPass, now: float) -> None:
    """Read the endpoint's trace files oldest first: keep the rows of the watched versions,
    then delete each file."""
    assert endpoint.trace_file is not None
    batching = {ref.name: int(record.spec.deployment.get("max_batch_size", 1)) > 0
                for ref, record in versions.items()}
    for path in trace_files(endpoint.trace_file):
        _consume(ctx, endpoint, path, versions, batching, report, now)
    files = list(backlog(endpoint.trace_file))
    add_trace_counts(ctx.store, endpoint.name, backlog=(len(files), sum(s for _, s in files)),
                     files=report.files, requests=report.requests, rejected=report.rejected,
                     problems=report.problems, now=now)


def _consume(ctx: Context, endpoint: TritonEndpoint, path: Path,
             versions: Mapping[ModelRef, ModelRecord], batching: Mapping[str, bool],
             report: EndpointPass, now: float) -> None:
    def problem(text: str) -> None:
        report.problems += 1
        log.warning("trace file problem endpoint=%s file=%s problem=%s", endpoint.name, path,
                    text)

    try:
        stat = path.stat()
        if stat.st_size > MAX_FILE_BYTES:
            problem(f"larger than {MAX_FILE_BYTES} bytes: not read")
            _reject(path, report, problem)
            return
        data = path.read_bytes()
    except OSError as exc:
        problem(f"cannot read: {exc.strerror or exc}")
        return
    decoded = decode(data, batched=lambda model: batching.get(model, True))
    if not decoded.complete:
        if now - stat.st_mtime < GRACE:
            report.waiting += 1  # still being written: the next pass reads it
            return
        if not decoded.records:
            problem("not a JSON array of trace records")
            _reject(path, report, problem)
            return
        problem(f"cut short: the {decoded.records} whole records before the cut are read")
    for text in decoded.problems:
        problem(text)
    batches = {ModelRef(*key): renamed(columns, ctx.settings.drift_config(key[0]).columns)
               for key, columns in decoded.batches.items() if ModelRef(*key) in versions}
    requests = sum(n for key, n in decoded.requests.items() if ModelRef(*key) in versions)
    if add_trace_file(ctx.store, endpoint.name, hashlib.sha256(data).hexdigest(), path.name,
                      requests=requests, batches=batches, at=now, now=now):
        report.files += 1
        report.requests += requests
    try:
        path.unlink()
    except OSError as exc:  # read and kept: the next pass finds its digest and only deletes it
        problem(f"cannot delete: {exc.strerror or exc}")


def _reject(path: Path, report: EndpointPass, problem: Any) -> None:
    try:
        path.rename(path.with_name(path.name + ".rejected"))
        report.rejected += 1
    except OSError as exc:
        problem(f"cannot rename to {path.name}.rejected: {exc.strerror or exc}")


def forget_unconfigured(ctx: Context, endpoints: set[str]) -> None:
    """Watches of an endpoint no longer configured with a trace file: put back where it is
    still configured, else only forgotten (lifecycled can no longer reach it)."""
    configured = {e.name: e for e in ctx.settings.sources.triton}
    for watch in watches(ctx.store):
        if watch.endpoint in endpoints:
            continue
        endpoint = configured.get(watch.endpoint)
        if endpoint is not None:
            with ctx.source(f"traces:{endpoint.name}"), ctx.triton(endpoint) as client:
                restore(client, watch)
        else:
            log.warning("trace settings not restored: endpoint %s is no longer configured "
                        "model=%s", watch.endpoint, watch.name)
        drop_watch(ctx.store, watch.endpoint, watch.name)


def stop_tracing(ctx: Context) -> None:
    """Put back every watched model's trace settings (the daemon stops)."""
    configured = {e.name: e for e in ctx.settings.sources.triton}
    for watch in watches(ctx.store):
        endpoint = configured.get(watch.endpoint)
        if endpoint is None:
            continue
        try:
            with ctx.triton(endpoint) as client:
                restore(client, watch)
        except SourceError as exc:
            log.warning("trace settings not restored endpoint=%s model=%s error=%s",
                        watch.endpoint, watch.name, exc)
            continue
        drop_watch(ctx.store, watch.endpoint, watch.name)


def freeze_due(ctx: Context, live: Mapping[ModelRef, ModelRecord], now: float) -> list[ModelRef]:
    """Freeze the reference of each live version whose drift reference is frozen from traces
    once it has ``reference_rows`` rows sampled since it entered its status; the versions still
    waiting."""
    frozen = frozen_refs(ctx.store)
    due = {ref: record for ref, record in live.items() if ref not in frozen
           and ctx.settings.drift_config(ref.name).reference in (None, FROZEN)}
    counts = traced_counts(ctx.store, {ref: r.status_changed_at for ref, r in due.items()})
    waiting = []
    for ref, record in due.items():
        wanted = ctx.settings.drift_config(ref.name).reference_rows or 1000
        if counts[ref] < wanted:
            waiting.append(ref)
            continue
        columns, rows = traced_rows(ctx.store, ref, since=record.status_changed_at,
                                    oldest=wanted)
        origin = {"source": "triton traces", "status": record.status.value,
                  "since": record.status_changed_at}
        if freeze_reference(ctx.store, ref, columns, origin, actor="lifecycled",
                            reason=f"drift reference frozen from the first {rows} rows Triton "
                                   f"sampled since the version became {record.status.value}",
                            now=now, replace=False):
            log.info("drift reference frozen model=%s rows=%d", ref, rows)
    return waiting
