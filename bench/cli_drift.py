"""`lifecycled drift` end to end, as a user runs it: the whole process on Parquet and CSV files
(second run, so the reference profile comes from the cache), against two baselines measured in
the same run: a process that only reads both files with pyarrow (``read-only``; the ratio the
start-up target is stated in), and the floor of the work itself: starting the interpreter with the
modules the command imports, reading both files, and the warm engine on the data in memory.

Deterministic data (seed 0, as bench/drift.py): reference N(0, 1) per feature; half the current
features shifted x * 1.2 + 0.3.

    python bench/cli_drift.py                  # 1,000,000 x 20
    python bench/cli_drift.py --rows 20000     # smoke test
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from lifecycled.core.drift import compare
from lifecycled.core.profile import build_profile
from lifecycled.domain import DriftPolicy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drift import best_of, make_data  # the same data and timing as the engine benchmark


def read(fmt: str, path: Path) -> pa.Table:
    return pq.read_table(path) if fmt == "parquet" else pa_csv.read_csv(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    reference, current = make_data(args.rows, args.features)
    profile = build_profile(reference)
    settings = DriftPolicy()
    warm = best_of(lambda: compare(profile, current, settings), args.repeat)
    # as installed from the wheel, whose modules pip compiles: bytecode is cached, not
    # compiled again by every process (the first run writes it)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    start_up = best_of(lambda: subprocess.run(
        [sys.executable, "-c", "import lifecycled.cli, lifecycled.tasks.drift"], check=True,
        env=env), args.repeat)
    print(f"{args.rows:,} x {args.features}: warm engine {warm:.3f} s, interpreter and imports "
          f"{start_up:.3f} s")
    print(f"{'format':>8} {'read s':>8} {'read-only s':>11} {'floor s':>8} {'cold run s':>10} "
          f"{'second run s':>12} {'/read-only':>10} {'/floor':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env["XDG_CACHE_HOME"] = str(work / "cache")
        for fmt in ("parquet", "csv"):
            paths = {}
            for name, data in (("reference", reference), ("current", current)):
                table = pa.table(data)
                paths[name] = work / f"{name}.{fmt}"
                if fmt == "parquet":
                    pq.write_table(table, paths[name])
                else:
                    pa_csv.write_csv(table, paths[name])
            reading = best_of(lambda fmt=fmt, paths=paths: [read(fmt, p) for p in paths.values()],
                              args.repeat)
            floor = reading + warm + start_up
            reader = ("import pyarrow.parquet as m; f = m.read_table" if fmt == "parquet"
                      else "import pyarrow.csv as m; f = m.read_csv")
            only = f"{reader}; f({str(paths['reference'])!r}); f({str(paths['current'])!r})"
            read_only = best_of(lambda only=only: subprocess.run(
                [sys.executable, "-c", only], check=True, env=env), args.repeat)
            argv = [sys.executable, "-m", "lifecycled", "drift", "--reference",
                    str(paths["reference"]), "--current", str(paths["current"]), "--json"]

            def run(argv: list[str] = argv) -> None:
                subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)

            cold = best_of(run, 1)  # builds and caches the reference profile
            second = best_of(run, args.repeat)
            print(f"{fmt:>8} {reading:8.3f} {read_only:11.3f} {floor:8.3f} {cold:10.3f} "
                  f"{second:12.3f} {second / read_only:10.2f} {second / floor:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
