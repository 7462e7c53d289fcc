"""Drift task benchmark: the scheduled drift pass over 200 configured production models, each with
its own 100,000 x 20 Parquet reference and current file, against the engine's own cost.

Deterministic data (seed = the model's number): reference N(0, 1) per feature; each pass writes a
new current file per model (half the features shifted x * 1.2 + 0.3), the writing not timed
and flushed to disk before the pass (the kernel writing out 4 GB of new files competes with
neither the pass nor its floor).
Printed: the first pass (every reference profile built and cached), then passes with new current
files, each against its floor measured in the same run (the warm engine, ``compare`` on the
profile and the current columns already in memory, summed over the models) with the overhead per
model as a share of the engine's cost and the part of it that is reading the current file; then a
pass with no file changed; and the resident memory after the 10th, 100th and last model of a
pass (it must stay flat: one model's data at a time).

    python bench/drift_task.py [--models 200] [--rows 100000] [--features 20] [--passes 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_table(path: Path, columns: dict[str, np.ndarray]) -> None:
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.table(columns), tmp)
    tmp.replace(path)  # a new file, as a pipeline writing its window would leave it


def columns(seed: int, rows: int, features: int, shifted: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(features):
        x = rng.normal(0, 1, rows)
        out[f"f{i}"] = x * 1.2 + 0.3 if shifted and i % 2 == 0 else x
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()

    import lifecycled.tasks.drift as drift_task
    from lifecycled.config import parse_settings
    from lifecycled.context import Context
    from lifecycled.core.drift import compare
    from lifecycled.domain import ModelRef, ModelSpec, Status
    from lifecycled.sources.files import expand
    from lifecycled.sources.profiles import PROFILE_DIR, cached_profile
    from lifecycled.sources.samples import read_sample
    from lifecycled.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        names = [f"model_{i:03d}" for i in range(args.models)]
        started = time.perf_counter()
        for i, name in enumerate(names):
            write_table(work / "data" / f"{name}_reference.parquet",
                        columns(i, args.rows, args.features, shifted=False))
            write_table(work / "data" / f"{name}_current.parquet",
                        columns(10_000 + i, args.rows, args.features, shifted=True))
        os.sync()
        print(f"{args.models} models, {args.rows:,} x {args.features} each: files written in "
              f"{time.perf_counter() - started:.1f} s")
        settings = parse_settings({"models": {name: {"drift": {
            "reference": str(work / "data" / f"{name}_reference.parquet"),
            "current": str(work / "data" / f"{name}_current.parquet")}} for name in names}})
        store = open_store("sqlite:///state.db", work)
        for name in names:
            store.register(ModelSpec(ModelRef(name, "1"), owner_team="t", business_domain="d"),
                           Status.PRODUCTION, actor="bench", reason="bench", now=time.time())
        ctx = Context(settings, store)

        memory: list[float] = []
        checked = drift_task.run_model_drift

        def measured(*a: Any, **k: Any) -> Any:
            found = checked(*a, **k)
            memory.append(rss_mib())
            return found

        drift_task.run_model_drift = measured

        def one_pass() -> float:
            memory.clear()
            start = time.perf_counter()
            done = drift_task.run_drift(ctx)
            seconds = time.perf_counter() - start
            assert len(done) == args.models and not any("error" in d for d in done.values()), done
            return seconds

        def floors() -> tuple[float, float]:
            """The warm engine and the read of the current file, summed over the models."""
            engine = reading = 0.0
            policy = settings.drift_policy(names[0])
            for name in names:
                reference = expand(str(work / "data" / f"{name}_reference.parquet"))
                profile, cached = cached_profile(work / PROFILE_DIR, reference, policy.bins, (),
                                                 lambda: None)  # type: ignore[arg-type,return-value]
                assert cached
                start = time.perf_counter()
                current = read_sample(str(work / "data" / f"{name}_current.parquet"))
                middle = time.perf_counter()
                compare(profile, current.columns, policy)
                reading += middle - start
                engine += time.perf_counter() - middle
            return engine, reading

        first = one_pass()
        print(f"first pass (every profile built): {first:.2f} s, "
              f"{first / args.models * 1e3:.0f} ms per model")
        print(f"{'pass':>22}  {'seconds':>8}  {'engine s':>8}  {'overhead':>8}  "
              f"{'of it reading':>13}  RSS MiB after model 10 / 100 / last")
        for number in range(args.passes):
            for i, name in enumerate(names):
                write_table(work / "data" / f"{name}_current.parquet",
                            columns(20_000 + 1000 * number + i, args.rows, args.features, True))
            os.sync()  # the kernel's writing out of the new files is not the pass's to pay
            seconds = one_pass()
            marks = [memory[min(k, len(memory)) - 1] for k in (10, 100, len(memory))]
            engine, reading = floors()
            print(f"{'new current files':>22}  {seconds:>8.2f}  {engine:>8.2f}  "
                  f"{(seconds - engine) / engine:>+8.0%}  {reading / engine:>+13.0%}  "
                  + " / ".join(f"{m:.0f}" for m in marks))
        seconds = one_pass()
        print(f"{'no file changed':>22}  {seconds:>8.2f}  {engine:>8.2f}  "
              f"{(seconds - engine) / engine:>+8.0%}")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
