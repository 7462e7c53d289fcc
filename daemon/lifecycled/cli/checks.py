"""Check commands: discover, collect, drift, reference, quality and report."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lifecycled.cli.output import (
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_UNKNOWN,
    Formatter,
    add_actor,
    duration,
    number,
    show,
)
from lifecycled.domain import MAX_COUNT, SEVERITIES, DriftPolicy, ModelRef, Severity, Status
from lifecycled.errors import InputError
from lifecycled.render import ago, fmt, table, utc


def cmd_report(args: argparse.Namespace) -> int:
    """``report``: the lifecycle overview; ``report --model``: one version's performance."""
    from lifecycled import app
    if args.model:
        return model_report(args)
    now = time.time()
    with app.opened(args.config, create=False) as ctx:
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
    show(args, payload, lambda: "\n".join([
        f"Lifecycle overview ({payload['total']} model versions)", "",
        table(["STATUS", "COUNT"], [[s, n] for s, n in counts.items()]), "",
        table(["BUSINESS DOMAIN", "COUNT"], [[d, n] for d, n in by_domain.items()]), "",
        "Recent activity:",
        table(["MODEL", "STATUS", "CHANGED"],
              [[str(r.ref), r.status, ago(now - r.last_updated)] for r in recent]),
    ]))
    return EXIT_OK


def model_report(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.performance import performance_summary

    ref = ModelRef.parse(args.model)
    with app.opened(args.config, create=False) as ctx:
        data = performance_summary(ctx.context(), ref, args.days)

    def text() -> str:
        rows = [[name, m["count"], fmt(m["mean"]), fmt(m["std"]), fmt(m["min"]),
                 fmt(m["max"])] for name, m in data["measures"].items()]
        lines = [f"Performance of {ref} over {args.days:g} days (from {data['source']}; "
                 f"status {data['status']}, latest level {data['latest_level']})", "",
                 table(["MEASURE", "N", "MEAN", "STD", "MIN", "MAX"], rows), ""]
        lines += [f"health issue: {issue}" for issue in data["issues"]] or ["no health issues"]
        return "\n".join(lines)

    show(args, data, text)
    return EXIT_PROBLEM if data["issues"] else EXIT_OK


def cmd_discover(args: argparse.Namespace) -> int:
    from lifecycled import app
    from lifecycled.tasks.discovery import run_discovery

    with app.opened(args.config) as ctx:
        report = run_discovery(ctx.context())
    data = report.to_json()
    show(args, data, lambda: _discover_text(data))
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

    from lifecycled import app
    from lifecycled.store.serving import last_scrape
    from lifecycled.tasks.collect import run_collect

    wait = args.wait
    with app.opened(args.config) as ctx:
        job = ctx.context()
        if any(last_scrape(ctx.store, e.name) is None for e in ctx.settings.sources.triton):
            run_collect(job)  # the first scrape is only a base for rates
            threading.Event().wait(wait)
        report = run_collect(job)
    data = report.to_json()
    show(args, data, lambda: _collect_text(data))
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


def _missing_change(f: dict[str, Any]) -> str:
    before, after = f["reference_missing_share"], f["current_missing_share"]
    if before is None or after is None:
        return "-"
    return f"{before:.1%} -> {after:.1%}"


def _verdict_cell(f: dict[str, Any]) -> str:
    if not f["judged"]:
        return f"{f['reason']}: {f['detail']}"
    counted = f.get("counted") or []
    return f["severity"] + (f" ({', '.join(counted)})" if counted else "")


_ORDER = {name: rank for rank, name in enumerate(("critical", "high", "medium", "low"))}


def _drift_text(record: dict[str, Any]) -> str:
    features = sorted(record["features"], key=lambda f: (
        _ORDER.get(f["severity"] or "", -1 if f["reason"] in ("type_mismatch", "missing_column")
                   else 5), f["feature"]))
    rows = [[f["feature"], f["kind"], fmt(f["statistic"]),
             fmt(f["adjusted_p_value"] if f["adjusted_p_value"] is not None else f["p_value"],
                 ".3g"),
             f"{fmt(f['psi'])} {f.get('psi_tier') or ''}".strip(), fmt(f["js"]),
             _missing_change(f), _verdict_cell(f)] for f in features]
    share = record["drifted_share"]
    drivers = record.get("drivers") or []
    lines = [table(["FEATURE", "KIND", "D/TVD", "P", "PSI", "JS", "MISSING", "SEVERITY / REASON"],
                   rows), "",
             *([f"judged at alpha = {record['alpha']:.3g}"
                + (f", {record['alpha_basis']}" if record.get("alpha_basis") else "")]
               if record.get("alpha") is not None else []),
             f"model severity: {record['severity']}"
             + (f" (driven by {', '.join(drivers)})" if drivers else "")
             + f"; drifted features{_at_or_above(record)}: "
             f"{'-' if share is None else f'{share:.0%}'} of {record['judged']} judged"
             f" ({record['unjudged']} not judged); current rows: {record['current_rows']}",
             "recommendations:"]
    if record.get("source") == "triton":
        lines.insert(-1, f"current: {', '.join(record['current_files'])}; reference: "
                         f"{', '.join(record['reference_files'])}")
    lines += [f"  - {r}" for r in record["recommendations"]]
    if record.get("segments"):
        lines += ["", table(["SEGMENT", "ROWS", "REFERENCE ROWS", "DRIFTED", "SEVERITY",
                             "WORST FEATURES"],
                            [[s["segment"], fmt(s.get("current_rows")),
                              fmt(s.get("reference_rows")),
                              "-" if s.get("drifted_share") is None
                              else f"{s['drifted_share']:.0%}", s["severity"],
                              s.get("error") or ", ".join(
                                  f"{f['feature']} ({f['severity']})"
                                  for f in s.get("worst_features", [])[:3])]
                             for s in record["segments"]])]
    return "\n".join(lines)


def _fail_on(args: argparse.Namespace, severity: str, judged: int) -> int:
    """--fail-on LEVEL: 1 at or above LEVEL, 3 when nothing could be judged (unknown, or no
    feature judged: every one a schema break), whatever LEVEL is."""
    if not args.fail_on:
        return EXIT_OK
    verdict = Severity.parse(severity)
    if verdict == Severity.UNKNOWN or not judged:
        return EXIT_UNKNOWN
    return EXIT_PROBLEM if verdict >= Severity.parse(args.fail_on) else EXIT_OK


def _split(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def cmd_drift(args: argparse.Namespace) -> int:
    # Imported here so that registry commands start without numpy, scipy and pyarrow; the
    # daemon's composition root only for a configured model.
    from lifecycled.tasks.drift import DriftInputs, check_drift, check_to_json, run_model_drift

    now = time.time()
    progress = _progress("drift")
    if args.model:
        if args.alpha is not None:
            raise InputError("--alpha: a configured model is judged as the daemon judges it, "
                             "from its false-alarm budget (or its drift.alpha)")
        from lifecycled import app

        ref = ModelRef.parse(args.model)
        with app.opened(args.config) as ctx:
            _, record = run_model_drift(ctx.context(), ref, now=now, progress=progress)
        record = {"model": str(ref), **record}
    else:
        if not (args.reference and args.current):
            raise InputError("give --model NAME:VERSION, or both --reference and --current")
        inputs = DriftInputs(reference=args.reference, current=args.current,
                             features=_split(args.features),
                             categorical=_split(args.categorical) or (),
                             exclude=_split(args.exclude) or (), timeout=args.timeout,
                             strict_features=True)
        alpha = DriftPolicy.alpha if args.alpha is None else args.alpha
        basis = ("the one-shot default: a stationary window is judged medium or worse in at "
                 "most 0.5 % of checks" if args.alpha is None else "given by --alpha")
        settings = DriftPolicy(bins=args.bins, min_samples=args.min_samples,
                               correction=args.correction, alpha=alpha, rule=args.rule,
                               basis=basis)
        cache = None if args.no_cache else _profile_cache(args.cache_dir, now)
        record = check_to_json(check_drift(inputs, settings, cache_dir=cache, now=now,
                                           progress=progress), now=now)
    if args.html:
        from lifecycled.drift_report import render

        title = f"Drift report: {args.model}" if args.model else "Drift report"
        Path(args.html).write_text(render(record, title), encoding="utf-8")
    show(args, record, lambda: _drift_text(record)
         + (f"\nHTML report: {args.html}" if args.html else ""))
    return _fail_on(args, record["severity"], record["judged"])


def moment(text: str) -> float:
    """An argparse type: a time, as ISO 8601 (2026-12-01T08:00:00Z) or a duration ago (2h)."""
    from datetime import datetime

    from lifecycled.units import parse_duration
    try:
        return time.time() - parse_duration(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time or a duration ago (2h), "
                                         f"got {text!r}") from None


def cmd_reference_freeze(args: argparse.Namespace) -> int:
    """``reference freeze``: the drift reference of a traced version from the rows Triton
    sampled in a chosen window, replacing the one frozen before (a history row says so)."""
    from lifecycled import app
    from lifecycled.domain import FROZEN
    from lifecycled.store.traces import freeze_reference, traced_rows

    ref = ModelRef.parse(args.model)
    with app.opened(args.config) as ctx:
        config = ctx.settings.drift_config(ref.name)
        if config.source != "triton" or config.reference not in (None, FROZEN):
            raise InputError(f"{ref}: its drift reference is not frozen from Triton's traces "
                             f"(models.{ref.name}.drift.source: triton, reference: frozen)")
        ctx.store.get(ref)
        columns, rows = traced_rows(ctx.store, ref, since=args.since, until=args.until,
                                    oldest=args.rows)
        if not rows:
            raise InputError(f"{ref}: no rows Triton sampled in that window (they are kept "
                             f"for twice the drift window)")
        origin = {"source": "triton traces", "chosen": {"since": args.since,
                                                        "until": args.until}}
        freeze_reference(ctx.store, ref, columns, origin, actor=args.actor, reason=args.reason,
                         now=time.time(), replace=True)
    payload = {"model": str(ref), "rows": rows, "columns": sorted(columns), "origin": origin}
    show(args, payload, lambda: f"{ref}: drift reference frozen from {rows} traced rows "
                                f"({', '.join(sorted(columns))})")
    return EXIT_OK


def _origin_text(origin: dict[str, Any]) -> str:
    """Where a frozen reference's rows came from, in words."""
    chosen = origin.get("chosen")
    if chosen is not None:
        ends = [f"{word} {utc(chosen[key])}" for word, key in (("from", "since"),
                                                               ("until", "until"))
                if chosen.get(key) is not None]
        return "rows Triton sampled, chosen by a person" + (f" ({', '.join(ends)})"
                                                            if ends else "")
    return (f"the first rows Triton sampled after the version became {origin.get('status')} "
            f"({utc(origin['since'])})" if "since" in origin else str(origin))


def cmd_reference_show(args: argparse.Namespace) -> int:
    """``reference show``: where a traced version's drift reference came from."""
    from lifecycled import app
    from lifecycled.store.traces import frozen_reference, traced_counts

    ref = ModelRef.parse(args.model)
    with app.opened(args.config, create=False) as ctx:
        record = ctx.store.get(ref)
        frozen = frozen_reference(ctx.store, ref)
        wanted = ctx.settings.drift_config(ref.name).reference_rows or 1000
        sampled = traced_counts(ctx.store, {ref: record.status_changed_at})[ref]
    if frozen is None:
        payload: dict[str, Any] = {"model": str(ref), "frozen": None, "sampled": sampled,
                                   "wanted": wanted}
        show(args, payload, lambda: f"{ref}: no reference frozen from traces yet ({sampled} "
                                    f"of {wanted} rows sampled)")
        return EXIT_OK
    payload = {"model": str(ref), "frozen_at": frozen.frozen_at, "rows": frozen.rows,
               "origin": frozen.origin, "columns": sorted(frozen.columns)}
    show(args, payload, lambda: "\n".join([
        f"{ref}: frozen {ago(time.time() - frozen.frozen_at)} from {frozen.rows} traced rows",
        f"origin: {_origin_text(frozen.origin)}",
        f"columns: {', '.join(sorted(frozen.columns))}"]))
    return EXIT_OK


PROFILE_CACHE_DAYS = 30


def _profile_cache(directory: str | None, now: float) -> Path:
    """The reference-profile cache of ad-hoc checks (keyed by the reference's content, as the
    daemon's); profiles unused for 30 days are removed."""
    from lifecycled.dirs import cache_base_dir
    from lifecycled.sources.profiles import PROFILE_DIR, prune_profiles

    cache = Path(directory) if directory else cache_base_dir(os.environ) / PROFILE_DIR
    prune_profiles(cache, older_than=now - PROFILE_CACHE_DAYS * 86400)
    return cache


def _quality_text(result: dict[str, Any]) -> str:
    concept = result["concept"]
    if result.get("model_type") == "regression":
        lines = [table(["METRIC", "VALUE"], [[k, fmt(result[k])] for k in
                                             ("mae", "rmse", "mape", "r2", "mean_error")]),
                 f"samples: {result['samples']} (regression; MAPE leaves out "
                 f"{result['mape_excluded']} zero label(s)); unlabelled: {result['unlabelled']}"]
    else:
        lines = [table(["METRIC", "VALUE"], [[k, fmt(result[k])] for k in
                                             ("accuracy", "precision", "recall", "f1",
                                              "roc_auc")]),
                 f"samples: {result['samples']} ({result['average']}; scored {result['scored']}"
                 f"{', positive ' + result['positive_label'] if result['positive_label'] else ''})"
                 f"; unlabelled: {result['unlabelled']}",
                 table(["CLASS", "TP", "FP", "FN", "SUPPORT"],
                       [[c["label"], c["true_positive"], c["false_positive"],
                         c["false_negative"], c["support"]] for c in result["classes"]])]
    lines += [f"note: {n}" for n in result["notes"]]
    lines.append(f"concept drift: {concept['severity'] or concept['reason']}")
    if concept["trend"] and concept["trend"].get("measure") == "absolute_error":
        t = concept["trend"]
        lines.append(f"  absolute error over {t['windows']} windows of {t['window_size']}: slope "
                     f"{t['slope']:.4g} of the mean per window (p {t['p_value']:.3g}), increase "
                     f"{t['increase']:.3g} (p {t['increase_p_value']:.3g}); indicators: "
                     f"{', '.join(t['indicators']) or 'none'}")
    elif concept["trend"]:
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


def _class_scores(text: str | None) -> dict[str, str] | None:
    """``a,b,c`` (columns named after their class) or ``label:column,...``."""
    if not text:
        return None
    pairs = [part.split(":", 1) if ":" in part else [part, part] for part in _split(text) or []]
    return {label: column for label, column in pairs}


def cmd_quality(args: argparse.Namespace) -> int:
    from lifecycled.core.quality import OutcomeColumns
    from lifecycled.tasks.outcomes import check_quality

    columns = OutcomeColumns(prediction=args.prediction_column, label=args.label_column,
                             score=args.score_column, timestamp=args.timestamp_column,
                             class_scores=_class_scores(args.score_columns))
    if args.model_type == "regression" and (args.score_column or args.score_columns
                                            or args.positive_label):
        raise InputError("--score-column, --score-columns and --positive-label are a "
                         "classifier's; a regression model is judged on its errors")
    result = check_quality(args.outcomes, columns, positive_label=args.positive_label,
                           timeout=args.timeout, model_type=args.model_type)
    show(args, result, lambda: _quality_text(result))
    return EXIT_OK


# -- plumbing ------------------------------------------------------------------------------------


def add_parsers(sub: Any, common: argparse.ArgumentParser, as_json: argparse.ArgumentParser
                ) -> None:
    parents = [common, as_json]
    p = sub.add_parser("discover", parents=parents, formatter_class=Formatter,
                       help="one discovery pass now: new, changed and missing models")
    p.set_defaults(func=cmd_discover)
    p = sub.add_parser("collect", parents=parents, formatter_class=Formatter,
                       help="one collect pass now (two scrapes if there is no previous one)")
    p.add_argument("--wait", type=duration, default="5s",
                   help="gap between two scrapes when needed")
    p.set_defaults(func=cmd_collect)

    defaults = DriftPolicy()
    p = sub.add_parser("drift", parents=parents, formatter_class=Formatter,
                       help="data drift between a reference and a current sample")
    p.add_argument("--model", metavar="NAME:VERSION", help="run the configured check and store it")
    p.add_argument("--reference", metavar="FILE",
                   help="CSV, Parquet or JSON Lines: a path, a glob or a URL (s3://, gs://, ...)")
    p.add_argument("--current", metavar="FILE",
                   help="CSV, Parquet or JSON Lines: a path, a glob or a URL (s3://, gs://, ...)")
    p.add_argument("--timeout", type=duration, default="30s",
                   help="deadline of each file operation on an object store")
    p.add_argument("--features", metavar="a,b", help="the columns to judge (default: every "
                                                     "column in both samples)")
    p.add_argument("--categorical", metavar="c,d",
                   help="columns judged as categories (default: the non-numeric columns)")
    p.add_argument("--bins", type=number(int, 2, 1000), default=defaults.bins,
                   help="reference-quantile bins (2 to 1000)")
    p.add_argument("--min-samples", type=number(int, 1, MAX_COUNT),
                   default=defaults.min_samples,
                   help="fewer values than this in either sample: not judged")
    p.add_argument("--exclude", metavar="e,f", help="columns not to judge")
    p.add_argument("--correction", choices=["none", "bonferroni", "bh"],
                   default=defaults.correction, help="p-value correction across features")
    p.add_argument("--alpha", type=number(float, 0, 1, low_open=True, high_open=True),
                   default=None,
                   help="an effect counts only where its test is significant at this level "
                        f"(default: {defaults.alpha}, a stationary window of any size judged "
                        "medium or worse in at most 0.5 %% of checks; --model: the daemon's, "
                        "from the false-alarm budget)")
    p.add_argument("--rule", choices=["tiers", "seed"], default=defaults.rule,
                   help="severity rule: effect-size tiers gated by significance, or the seed's "
                        "composite cut points")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="where the reference profiles of --reference files are kept, keyed by "
                        "their content (default: $XDG_CACHE_HOME/lifecycled/profiles)")
    p.add_argument("--no-cache", action="store_true",
                   help="build the reference profile afresh and keep nothing")
    p.add_argument("--html", metavar="FILE",
                   help="also write a self-contained HTML report (needs the report extra)")
    p.add_argument("--fail-on", choices=[s for s in SEVERITIES if s != "low"],
                   help="exit 1 when the model severity reaches this level, 3 when nothing "
                        "could be judged")
    p.set_defaults(func=cmd_drift)

    reference = sub.add_parser("reference", help="drift references frozen from Triton's traces"
                               ).add_subparsers(dest="reference_command", required=True,
                                                metavar="SUBCOMMAND")
    p = reference.add_parser("show", parents=parents, formatter_class=Formatter,
                             help="where a version's frozen reference came from")
    p.add_argument("model", metavar="NAME:VERSION", help="the model version")
    p.set_defaults(func=cmd_reference_show)
    p = reference.add_parser("freeze", parents=parents, formatter_class=Formatter,
                             help="freeze a version's reference from the rows sampled in a "
                                  "chosen window, replacing the one before")
    p.add_argument("model", metavar="NAME:VERSION", help="the model version")
    p.add_argument("--since", type=moment, default=None, metavar="TIME",
                   help="rows sampled at or after this (ISO 8601, or a duration ago: 6h)")
    p.add_argument("--until", type=moment, default=None, metavar="TIME",
                   help="rows sampled at or before this")
    p.add_argument("--rows", type=number(int, 1, MAX_COUNT), default=None,
                   help="at most the first N rows of the window (default: all of them)")
    p.add_argument("--reason", required=True, help="why (kept in the audit history)")
    add_actor(p)
    p.set_defaults(func=cmd_reference_freeze)

    p = sub.add_parser("quality", parents=parents, formatter_class=Formatter,
                       help="quality metrics and concept drift from labelled outcomes")
    p.add_argument("--outcomes", required=True, metavar="FILE",
                   help="CSV, Parquet or JSON Lines with predictions and labels: a path, a glob "
                        "or a URL (s3://, gs://, ...)")
    p.add_argument("--timeout", type=duration, default="30s",
                   help="deadline of each file operation on an object store")
    p.add_argument("--prediction-column", default="prediction", help="the predicted label")
    p.add_argument("--label-column", default="label", help="the true label")
    p.add_argument("--score-column", help="the score of the positive class (binary ROC AUC)")
    p.add_argument("--score-columns", metavar="a,b,c",
                   help="one score column per class (multiclass one-vs-rest ROC AUC): columns "
                        "named after their class, or LABEL:COLUMN pairs")
    p.add_argument("--timestamp-column", help="orders the outcomes for concept drift")
    p.add_argument("--positive-label", help="the positive class of a binary model")
    p.add_argument("--model-type", choices=["classification", "regression"],
                   default="classification",
                   help="the metrics the outcomes are judged by: a classifier's (accuracy, "
                        "precision, recall, F1, ROC AUC) or a regression's (MAE, RMSE, MAPE, "
                        "R², mean error)")
    p.set_defaults(func=cmd_quality)

    p = sub.add_parser("report", parents=parents, formatter_class=Formatter,
                       help="lifecycle overview, or --model: one version's performance summary")
    p.add_argument("--model", metavar="NAME:VERSION", help="one version's performance summary")
    p.add_argument("--days", type=number(float, 0, 3650, low_open=True), default=7.0,
                   help="the period the summary covers")
    p.set_defaults(func=cmd_report)

