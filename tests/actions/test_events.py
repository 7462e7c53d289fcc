"""Events from checks: a new threshold breach and a drift result at the alert severity."""

from __future__ import annotations

import csv
import dataclasses
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lifecycled.config import parse_settings
from lifecycled.context import Context
from lifecycled.domain import ModelRef, ModelSpec, Status
from lifecycled.sources.files import DataFile
from lifecycled.sources.profiles import Loaded
from lifecycled.sources.reader import Reader
from lifecycled.sources.samples import Sample
from lifecycled.store.outbox import deliveries, event_body
from lifecycled.store.serving import add_snapshot
from lifecycled.tasks.drift import run_model_drift
from lifecycled.tasks.evaluate import run_evaluate

from tests.stores import open_test_store

REF = ModelRef("credit_scoring", "1")

pytestmark = pytest.mark.usefixtures("both_engines")


def context(tmp_path: Path, **config: object) -> Context:
    store = open_test_store(tmp_path)
    store.subscriptions = {"ci": ("model.threshold_breached", "model.drift_detected")}
    store.register(ModelSpec(REF, owner_team="t", business_domain="d", thresholds={
        "min_accuracy": 0.85, "max_error_ratio": 0.01}), Status.PRODUCTION, actor="t",
        reason="r", now=1.0)
    return Context(parse_settings(config), store, clock=lambda: 100.0)


class Watching(Reader):
    """Reads as the daemon does, and remembers what it read and in which thread; ``after_*``
    hooks run after a read (a test changes a file there)."""

    def __init__(self) -> None:
        self.samples: list[tuple[str, str]] = []  # (pattern, thread)
        self.digests: list[str] = []
        self.fingerprints: list[str] = []
        self.profiles: list[str] = []  # the thread of each cached profile loaded
        self.after_sample: Callable[[str], None] = lambda pattern: None
        self.after_fingerprint: Callable[[str], None] = lambda path: None
        self.after_load_cached: Callable[[Loaded | None], None] = lambda loaded: None

    def sample(self, pattern: str, **options: Any) -> Sample:
        found = super().sample(pattern, **options)
        self.samples.append((pattern, threading.current_thread().name))
        self.after_sample(pattern)
        return found

    def digest(self, file: DataFile) -> str:
        self.digests.append(file.uri)
        return super().digest(file)

    def fingerprint(self, file: DataFile) -> str:
        found = super().fingerprint(file)
        self.fingerprints.append(file.path)
        self.after_fingerprint(file.path)
        return found

    def load_profile(self, path: Path) -> Any:
        self.profiles.append(threading.current_thread().name)
        return super().load_profile(path)

    def load_cached(self, cache_dir: Path, files: Sequence[DataFile], bins: int,
                    categorical: Sequence[str]) -> Loaded | None:
        found = super().load_cached(cache_dir, files, bins, categorical)
        self.after_load_cached(found)
        return found

    def read(self) -> list[str]:
        """The patterns sampled and the files hashed since the last call."""
        found = [p for p, _ in self.samples] + self.digests
        self.samples.clear()
        self.digests.clear()
        return found


def watched(ctx: Context) -> tuple[Context, Watching]:
    reader = Watching()
    return dataclasses.replace(ctx, reader=reader), reader


def ahead(thread: str) -> bool:
    return thread.startswith("drift-read-ahead")


def events(ctx: Context) -> list[dict[str, object]]:
    return [event_body(ctx.store, d.event_id) for d in deliveries(ctx.store)]


def test_threshold_breached_once_per_new_breach(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    with ctx.store.write() as conn:
        add_snapshot(conn, REF, 50.0, {"accuracy": 0.7, "error_ratio": 0.0}, {})
    run_evaluate(ctx)
    run_evaluate(ctx)  # the same breach again: no second event
    (event,) = events(ctx)
    assert event["type"] == "model.threshold_breached"
    (breach,) = event["data"]["breaches"]
    assert breach == {"threshold": "min_accuracy", "value": 0.7, "limit": 0.85}
    with ctx.store.write() as conn:
        add_snapshot(conn, REF, 60.0, {"accuracy": 0.7, "error_ratio": 0.2}, {})
    run_evaluate(ctx)
    assert [b["threshold"] for b in events(ctx)[-1]["data"]["breaches"]] == ["max_error_ratio"]


def write(path: Path, values: np.ndarray) -> str:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x"])
        writer.writerows([[v] for v in values])
    return str(path)


def test_drift_detected_at_the_alert_severity(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    reference = write(tmp_path / "ref.csv", rng.normal(0, 1, 1000))
    stable = write(tmp_path / "stable.csv", rng.normal(0, 1, 1000))
    shifted = write(tmp_path / "shifted.csv", rng.normal(2, 1, 1000))
    for current, expected in ((stable, 0), (shifted, 1)):
        ctx = context(tmp_path / current[-11:-4], models={"credit_scoring": {"drift": {
            "reference": reference, "current": current}}})
        run_model_drift(ctx, REF, now=100.0)
        found = [e for e in events(ctx) if e["type"] == "model.drift_detected"]
        assert len(found) == expected
        if found:
            assert found[0]["data"]["severity"] == "critical"
            assert found[0]["data"]["worst_features"][0]["feature"] == "x"


def test_the_drift_task_reads_only_files_that_changed(tmp_path: Path) -> None:
    """A pass whose reference and current files are unchanged reads neither and stores the last
    result again (unchanged, no second event); a rewritten current file (even with its old
    modification time put back) is checked afresh; a window of time is always checked."""
    import os

    import lifecycled.tasks.drift as drift
    from lifecycled.store.results import latest_drift

    rng = np.random.default_rng(1)
    reference = write(tmp_path / "ref.csv", rng.integers(0, 5, 1000))
    current = write(tmp_path / "cur.csv", rng.integers(5, 10, 1000))  # one digit a row
    ctx, reader = watched(context(tmp_path / "state", models={"credit_scoring": {"drift": {
        "reference": reference, "current": current}}}))
    assert drift.run_drift(ctx) == {str(REF): {"severity": "critical"}}
    reads = reader.read()
    assert reference in reads and current in reads
    drift.run_drift(ctx)
    assert reader.read() == []  # nothing changed: nothing read
    (stored,) = latest_drift(ctx.store, REF)
    assert stored.result["unchanged"] is True and stored.result["severity"] == "critical"
    assert len([e for e in events(ctx) if e["type"] == "model.drift_detected"]) == 1
    before = os.stat(current)
    write(tmp_path / "cur.csv", rng.integers(0, 5, 1000))  # rewritten, same size ...
    os.utime(current, ns=(before.st_atime_ns, before.st_mtime_ns))  # ... and old time put back
    assert os.stat(current).st_size == before.st_size
    assert drift.run_drift(ctx) == {str(REF): {"severity": "low"}}
    assert reader.read() == [current]
    (stored,) = latest_drift(ctx.store, REF)
    assert "unchanged" not in stored.result
    windowed, reader = watched(context(tmp_path / "windowed", models={"credit_scoring": {
        "drift": {"reference": reference, "current": current, "timestamp_column": "x",
                  "window": "1d"}}}))
    drift.run_drift(windowed)
    reader.read()
    drift.run_drift(windowed)
    drift.run_drift(windowed)
    assert reader.read() == [current, current]


def test_a_result_stored_before_its_key_had_a_column_is_checked_again(tmp_path: Path) -> None:
    """A result written before the ``inputs_key`` column (schema 12) has the key only in its
    JSON: the next pass checks the files again (once) rather than trust what it cannot see."""
    import lifecycled.tasks.drift as drift
    from lifecycled.store.results import latest_drift

    rng = np.random.default_rng(2)
    reference = write(tmp_path / "ref.csv", rng.normal(0, 1, 500))
    current = write(tmp_path / "cur.csv", rng.normal(0, 1, 500))
    ctx, reader = watched(context(tmp_path / "state", models={"credit_scoring": {"drift": {
        "reference": reference, "current": current}}}))
    drift.run_drift(ctx)
    with ctx.store.write() as conn:
        conn.execute("UPDATE drift_results SET inputs_key = NULL")
    (old,) = latest_drift(ctx.store, REF)
    assert old.result["inputs_key"]
    reader.read()
    drift.run_drift(ctx)
    assert current in reader.read()
    (checked,) = latest_drift(ctx.store, REF)
    assert "unchanged" not in checked.result and checked.result["inputs_key"] == \
        old.result["inputs_key"]
    drift.run_drift(ctx)
    assert reader.read() == [] and latest_drift(ctx.store, REF)[0].result["unchanged"] is True


def fleet(tmp_path: Path, names: list[str], rng: np.random.Generator
          ) -> tuple[Context, dict[str, str], Watching]:
    """Production models ``names``, each with a reference and a current file like it."""
    models, currents = {}, {}
    for name in names:
        reference = write(tmp_path / f"{name}_ref.csv", rng.normal(0, 1, 2000))
        currents[name] = write(tmp_path / f"{name}_cur.csv", rng.normal(0, 1, 2000))
        models[name] = {"drift": {"reference": reference, "current": currents[name]}}
    ctx, reader = watched(context(tmp_path / "state", models=models))
    for name in names:
        ctx.store.register(ModelSpec(ModelRef(name, "1"), owner_team="t", business_domain="d"),
                           Status.PRODUCTION, actor="t", reason="r", now=1.0)
    return ctx, currents, reader


def test_the_drift_task_reads_the_next_current_file_ahead_once(tmp_path: Path) -> None:
    """While one model is checked the next one's current file is read in a thread; each file
    is read once, and the results are those of checking each model alone."""
    import lifecycled.tasks.drift as drift
    from lifecycled.store.results import latest_drift

    names = ["m_a", "m_b", "m_c"]
    ctx, currents, reader = fleet(tmp_path, names, np.random.default_rng(2))
    done = drift.run_drift(ctx)
    reads = [(path, thread) for path, thread in reader.samples if path in currents.values()]
    assert sorted(path for path, _ in reads) == sorted(currents.values())  # each once
    early = [path for path, thread in reads if ahead(thread)]
    assert sorted(early) == sorted(currents[n] for n in names[1:])  # all but the first
    alone = context(tmp_path / "alone", models={
        n: ctx.settings.models[n].model_dump() for n in names})
    for name in names:
        ref = ModelRef(name, "1")
        alone.store.register(ModelSpec(ref, owner_team="t", business_domain="d"),
                             Status.PRODUCTION, actor="t", reason="r", now=1.0)
        _, record = run_model_drift(alone, ref, now=100.0)
        (stored,) = latest_drift(ctx.store, ref)
        assert done[str(ref)] == {"severity": record["severity"]}
        assert [f["statistic"] for f in stored.result["features"]] == [
            f["statistic"] for f in record["features"]]


def test_a_current_file_replaced_after_its_read_ahead_is_judged_as_it_is_now(
        tmp_path: Path) -> None:
    """A pipeline writes a new current file just after the read ahead took the old one: the
    check judges the new file (and its stored inputs key describes it), not what was read
    ahead."""
    import lifecycled.tasks.drift as drift
    from lifecycled.store.results import latest_drift

    rng = np.random.default_rng(3)
    ctx, currents, reader = fleet(tmp_path, ["m_a", "m_b"], rng)

    def then_replaced(pattern: str) -> None:
        if pattern == currents["m_b"] and ahead(threading.current_thread().name):
            fresh = tmp_path / "fresh.csv"
            write(fresh, rng.normal(3, 1, 2000))  # a new window, badly shifted
            fresh.replace(currents["m_b"])

    reader.after_sample = then_replaced
    done = drift.run_drift(ctx)
    assert done["m_b:1"] == {"severity": "critical"}  # the file as it is now
    reader.after_sample = lambda pattern: None
    # the next pass: the stored result again (its key names the new file) or, had the key been
    # taken before the file changed, a fresh check; never the old file's verdict
    assert drift.run_drift(ctx)["m_b:1"] == {"severity": "critical"}
    (stored,) = latest_drift(ctx.store, ModelRef("m_b", "1"))
    assert stored.result["current_rows"] == 2000


def test_the_drift_task_loads_the_next_cached_profile_ahead_once(tmp_path: Path) -> None:
    """Once the profiles are cached, the next model's profile is loaded in the read-ahead
    thread with its current file, and the check takes it instead of loading it again."""
    import lifecycled.tasks.drift as drift

    names = ["m_a", "m_b", "m_c"]
    ctx, currents, reader = fleet(tmp_path, names, np.random.default_rng(4))
    drift.run_drift(ctx)  # builds and caches every profile
    reader.profiles.clear()
    rng = np.random.default_rng(5)
    for name in names:
        write(Path(currents[name]), rng.normal(0, 1, 2000))  # a new window each
    done = drift.run_drift(ctx)
    assert all(not d.get("error") for d in done.values())
    assert len(reader.profiles) == len(names)  # each profile once
    assert sum(ahead(thread) for thread in reader.profiles) == len(names) - 1


def test_a_reference_replaced_after_its_profile_was_loaded_ahead_is_judged_as_it_is_now(
        tmp_path: Path) -> None:
    """A new reference lands just after the read ahead loaded the old one's cached profile:
    the check builds the new reference's profile and judges against it, as a check of that
    model alone does."""
    import lifecycled.tasks.drift as drift
    from lifecycled.store.results import latest_drift

    rng = np.random.default_rng(6)
    ctx, currents, reader = fleet(tmp_path, ["m_a", "m_b"], rng)
    drift.run_drift(ctx)  # caches both profiles
    write(Path(currents["m_b"]), rng.normal(3, 1, 2000))  # a new window, shifted by 3
    reference = tmp_path / "m_b_ref.csv"

    def then_replaced(loaded: Loaded | None) -> None:
        if ahead(threading.current_thread().name):
            assert loaded is not None
            fresh = tmp_path / "fresh.csv"
            write(fresh, rng.normal(3, 1, 2000))  # the reference now looks like the window
            fresh.replace(reference)

    reader.after_load_cached = then_replaced
    done = drift.run_drift(ctx)
    assert done["m_b:1"] == {"severity": "low"}  # judged on the new reference
    (stored,) = latest_drift(ctx.store, ModelRef("m_b", "1"))
    assert stored.result["profile_cached"] is False


def test_each_model_is_looked_at_once_a_pass_and_a_change_after_the_look_is_checked_next(
        tmp_path: Path) -> None:
    """The look that decides whether to read the next model ahead (``unchanged``) is the one
    its check uses: each model's files are looked at once a pass. A current file replaced after
    that look, while the model before it is checked, is judged by the next pass: the result
    stored again keeps the key of what it judged, which no longer names the files."""
    import lifecycled.tasks.drift as drift
    from lifecycled.store.results import latest_drift

    rng = np.random.default_rng(7)
    ctx, currents, reader = fleet(tmp_path, ["m_a", "m_b", "m_c"], rng)
    drift.run_drift(ctx)
    write(Path(currents["m_a"]), rng.normal(0, 1, 2000))  # m_a is checked again, m_b is not
    reader.fingerprints.clear()
    m_b_reference = str(tmp_path / "m_b_ref.csv")

    def then_replaced(path: str) -> None:  # a look ends with the reference's fingerprint
        if path == m_b_reference and reader.fingerprints.count(path) == 1:
            fresh = tmp_path / "fresh.csv"
            write(fresh, rng.normal(3, 1, 2000))  # m_b's new window lands after its look
            fresh.replace(currents["m_b"])

    reader.after_fingerprint = then_replaced
    done = drift.run_drift(ctx)
    looked = [p for p in reader.fingerprints if p.endswith("_ref.csv")]
    assert sorted(looked) == sorted(str(tmp_path / f"{n}_ref.csv") for n in currents)  # once
    assert done["m_b:1"] == {"severity": "low"}  # as the pass found it when it looked
    assert latest_drift(ctx.store, ModelRef("m_b", "1"))[0].result["unchanged"] is True
    assert drift.run_drift(ctx)["m_b:1"] == {"severity": "critical"}  # the new window
    assert "unchanged" not in latest_drift(ctx.store, ModelRef("m_b", "1"))[0].result
