"""CLI commands for checks: discovery, collection, drift, quality, the performance report
(part of the CLI; prints for people)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from lifecycled import app
from lifecycled.cli_actions import emit
from lifecycled.domain import ModelRef, Status
from lifecycled.errors import InputError
from lifecycled.render import ago, fmt, table

EXIT_OK, EXIT_PROBLEM = 0, 1


def cmd_report(args: argparse.Namespace) -> int:
    """``report``: the lifecycle overview; ``report --model``: one version's performance."""
    if args.model:
        return model_report(args)
    now = time.time()
    with app.opened(args.config) as ctx:
        by_status = ctx.store.counts("status")
        by_domain = ctx.store.counts("business_domain")
        recent = ctx.store.recently_changed(5)
    counts = {s.value: by_status.get(s.value, 0) for s in Status}
    payload = {
        "generated_at": now,
        "total": sum(by_status.values()),
        "by_status": counts,
        "by_domain": by_domain,
        "recent": [{"model": r.ref.name, "version": r.ref.version, "status": r.status.value,
                    "last_updated": r.last_updated, "age_seconds": now - r.last_updated}
                   for r in recent],
    }
    emit(args, payload, lambda: "\n".join([
        f"Lifecycle overview ({payload['total']} model versions)", "",
        table(["STATUS", "COUNT"], [[s, n] for s, n in counts.items()]), "",
        table(["BUSINESS DOMAIN", "COUNT"], [[d, n] for d, n in by_domain.items()]), "",
        "Recent activity:",
        table(["MODEL", "STATUS", "CHANGED"],
              [[str(r.ref), r.status, ago(now - r.last_updated)] for r in recent]),
    ]))
    return EXIT_OK


def model_report(args: argparse.Namespace) -> int:
    from lifecycled.jobs.report import performance_report

    ref = ModelRef.parse(args.model)
    with app.opened(args.config) as ctx:
        data = performance_report(ctx.context(), ref, args.days)

    def text() -> str:
        rows = [[name, m["count"], fmt(m["mean"]), fmt(m["std"]), fmt(m["min"]),
                 fmt(m["max"])] for name, m in data["measures"].items()]
        lines = [f"Performance of {ref} over {args.days:g} days (from {data['source']}; "
                 f"status {data['status']}, latest level {data['latest_level']})", "",
                 table(["MEASURE", "N", "MEAN", "STD", "MIN", "MAX"], rows), ""]
        lines += [f"health issue: {issue}" for issue in data["issues"]] or ["no health issues"]
        return "\n".join(lines)

    emit(args, data, text)
    return EXIT_PROBLEM if data["issues"] else EXIT_OK


def cmd_discover(args: argparse.Namespace) -> int:
    from lifecycled.jobs.discovery import run_discovery

    with app.opened(args.config) as ctx:
        report = run_discovery(ctx.context())
    data = report.to_json()
    emit(args, data, lambda: _discover_text(data))
    return _all_down(data["endpoints"])


def _all_down(endpoints: dict[str, str]) -> int:
    """Exit 1 when endpoints are configured and none answered."""
    return EXIT_PROBLEM if endpoints and all(v != "up" for v in endpoints.values()) else EXIT_OK


def _discover_text(data: dict[str, Any]) -> str:
    lines = [table(["ENDPOINT", "STATUS"], list(data["endpoints"].items()))
             if data["endpoints"] else "no Triton endpoints configured"]
    lines.append(f"new: {', '.join(data['registered']) or 'none'}")
    lines += [f"changed: {c['model']} on {c['endpoint']}: {c['from']} -> {c['to']}"
              + (f" ({c['reason']})" if c["reason"] else "") for c in data["changed"]]
    lines += [f"failed: {m}" for m in data["failed"]]
    lines += [f"mismatch: {m['model']}: {m['detail']}" for m in data["mismatches"]]
    return "\n".join(lines)


def cmd_collect(args: argparse.Namespace) -> int:
    import threading

    from lifecycled.jobs.collect import run_collect
    from lifecycled.store.serving import last_scrape
    from lifecycled.units import parse_duration

    wait = parse_duration(args.wait)
    with app.opened(args.config) as ctx:
        job = ctx.context()
        if any(last_scrape(ctx.store, e.name) is None for e in ctx.settings.sources.triton):
            run_collect(job)  # the first scrape is only a base for rates
            threading.Event().wait(wait)
        report = run_collect(job)
    data = report.to_json()
    emit(args, data, lambda: _collect_text(data))
    return _all_down(data["endpoints"])


def _collect_text(data: dict[str, Any]) -> str:
    lines = [table(["ENDPOINT", "STATUS"], list(data["endpoints"].items()))
             if data["endpoints"] else "no Triton endpoints configured"]
    rows = [[m, fmt(v.get("requests_per_second")), fmt(v.get("error_ratio")),
             fmt(v.get("latency_mean_seconds")), fmt(v.get("latency_p99_seconds")),
             fmt(v.get("accuracy"))] for m, v in sorted(data["snapshots"].items())]
    lines.append(table(["MODEL", "REQ/S", "ERRORS", "MEAN S", "P99 S", "ACCURACY"], rows)
                 if rows else "no snapshots stored")
    lines += [f"no rate for {m}: {why}" for m, why in sorted(data["skipped"].items())]
    lines += [f"quality not read for {m}: {why}" for m, why in sorted(data["quality_errors"].items())]
    return "\n".join(lines)


def _progress(label: str) -> Callable[[int, int], None] | None:
    """A one-line progress counter on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\r{label}: {done}/{total} features", end=end, file=sys.stderr, flush=True)

    return show


def _at_or_above(record: dict[str, Any]) -> str:
    level = record.get("alert_severity")  # absent from results stored by older versions
    return f" (at or above {level})" if level else ""


def _drift_text(record: dict[str, Any]) -> str:
    rows = [[f["feature"], f["kind"], fmt(f["statistic"]), fmt(f["p_value"], ".3g"),
             fmt(f["psi"]), fmt(f["js"]), fmt(f["score"]),
             f["severity"] or f"{f['reason']}: {f['detail']}"] for f in record["features"]]
    share = record["drifted_share"]
    lines = [table(["FEATURE", "KIND", "D/TVD", "P-VALUE", "PSI", "JS", "SCORE",
                    "SEVERITY / REASON"], rows), "",
             f"model severity: {record['severity']}; drifted features"
             f"{_at_or_above(record)}: "
             f"{'-' if share is None else f'{share:.0%}'} of {record['judged']} judged"
             f" ({record['unjudged']} not judged); current rows: {record['current_rows']}",
             "recommendations:"]
    lines += [f"  - {r}" for r in record["recommendations"]]
    return "\n".join(lines)


def _fail_on(args: argparse.Namespace, severity: str) -> int:
    from lifecycled.core.drift import Severity

    if args.fail_on and Severity.parse(severity) >= Severity.parse(args.fail_on):
        return EXIT_PROBLEM
    return EXIT_OK


def _split(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def cmd_drift(args: argparse.Namespace) -> int:
    # Imported here so that registry commands start without numpy, scipy and pyarrow.
    from lifecycled.core.drift import DriftSettings
    from lifecycled.jobs.drift import DriftInputs, check_drift, check_to_json, run_model_drift

    now = time.time()
    progress = _progress("drift")
    if args.model:
        ref = ModelRef.parse(args.model)
        with app.opened(args.config) as ctx:
            _, record = run_model_drift(ctx.context(), ref, now=now, progress=progress)
        record = {"model": str(ref), **record}
    else:
        if not (args.reference and args.current):
            raise InputError("give --model NAME:VERSION, or both --reference and --current")
        inputs = DriftInputs(reference=args.reference, current=args.current,
                             features=_split(args.features),
                             categorical=_split(args.categorical) or ())
        settings = DriftSettings(bins=args.bins, min_samples=args.min_samples,
                                 correction=args.correction)
        record = check_to_json(check_drift(inputs, settings, cache_dir=None, now=now,
                                           progress=progress), now=now)
    emit(args, record, lambda: _drift_text(record))
    return _fail_on(args, record["severity"])


def _quality_text(result: dict[str, Any]) -> str:
    concept = result["concept"]
    lines = [table(["METRIC", "VALUE"], [[k, fmt(result[k])] for k in
                                         ("accuracy", "precision", "recall", "f1", "roc_auc")]),
             f"samples: {result['samples']} ({result['average']}"
             f"{', positive ' + result['positive_label'] if result['positive_label'] else ''})"
             f"; unlabelled: {result['unlabelled']}",
             table(["CLASS", "TP", "FP", "FN", "SUPPORT"],
                   [[c["label"], c["true_positive"], c["false_positive"], c["false_negative"],
                     c["support"]] for c in result["classes"]])]
    lines += [f"note: {n}" for n in result["notes"]]
    lines.append(f"concept drift: {concept['severity'] or concept['reason']}")
    if concept["trend"]:
        t = concept["trend"]
        lines.append(f"  trend over {t['windows']} windows of {t['window_size']}: slope "
                     f"{t['slope']:.4g} (p {t['p_value']:.3g}), cv {t['coefficient_of_variation']:.3g}"
                     f", drop {t['drop']:.3g}; indicators: {', '.join(t['indicators']) or 'none'}")
    if concept["page_hinkley"]:
        ph = concept["page_hinkley"]
        seen = f"change at outcome {ph['change_index']}" if ph["detected"] else "no change"
        lines.append(f"  Page-Hinkley: {seen} (max statistic {ph['statistic']:.3g}, "
                     f"threshold {ph['threshold']:g})")
    return "\n".join(lines)


def cmd_quality(args: argparse.Namespace) -> int:
    from lifecycled.jobs.quality import OutcomeColumns, check_quality

    columns = OutcomeColumns(prediction=args.prediction_column, label=args.label_column,
                             score=args.score_column, timestamp=args.timestamp_column)
    result = check_quality(args.outcomes, columns, positive_label=args.positive_label)
    emit(args, result, lambda: _quality_text(result))
    return EXIT_OK


# -- plumbing ------------------------------------------------------------------------------------
