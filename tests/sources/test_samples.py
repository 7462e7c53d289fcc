"""Sample files: CSV, Parquet, JSON Lines, globs, windows, malformed files; the profile cache."""

from __future__ import annotations

import json
import mmap
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycled.core.drift import compare
from lifecycled.core.profile import build_profile
from lifecycled.domain import DriftPolicy
from lifecycled.errors import SourceError
from lifecycled.sources.files import expand
from lifecycled.sources.profiles import (
    cache_key,
    cached_profile,
    load_profile,
    prune_profiles,
    save_profile,
)
from lifecycled.sources.samples import read_sample


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_formats_agree(tmp_path: Path) -> None:
    rows = [("1.5", "a"), ("", "b"), ("3", "")]
    write_csv(tmp_path / "s.csv", "x,c", [f"{x},{c}" for x, c in rows])
    pq.write_table(pa.table({"x": [1.5, None, 3.0], "c": ["a", "b", None]}), tmp_path / "s.parquet")
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"x": 1.5, "c": "a"}, {"x": None, "c": "b"}, {"x": 3, "c": None}]) + "\n")
    for name in ("s.csv", "s.parquet", "s.jsonl"):
        sample = read_sample(str(tmp_path / name))
        assert sample.rows == 3
        x = sample.columns["x"]
        assert x.dtype == np.float64 and x[0] == 1.5 and np.isnan(x[1]) and x[2] == 3.0
        assert list(sample.columns["c"][:2]) == ["a", "b"]
        assert sample.columns["c"][2] in (None, "")


def test_glob_window_and_newest_rows(tmp_path: Path) -> None:
    write_csv(tmp_path / "day1.csv", "ts,x", [f"{t},{t}" for t in range(0, 50)])
    write_csv(tmp_path / "day2.csv", "ts,x", [f"{t},{t}" for t in range(50, 100)])
    everything = read_sample(str(tmp_path / "day*.csv"))
    assert everything.rows == 100 and len(everything.files) == 2
    recent = read_sample(str(tmp_path / "day*.csv"), timestamp_column="ts", window=10, now=99)
    assert list(recent.columns["x"]) == list(range(89, 100))
    newest = read_sample(str(tmp_path / "day*.csv"), newest_rows=5)
    assert list(newest.columns["x"]) == [95, 96, 97, 98, 99]


def test_missing_and_malformed_files_name_the_file_and_row(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"):
        read_sample(str(tmp_path / "nope.csv"))
    with pytest.raises(SourceError, match="no file matches"):
        read_sample(str(tmp_path / "none*.csv"))
    bad = write_csv(tmp_path / "bad.csv", "a,b", ["1,2", "3,4,5", "6,7"])
    with pytest.raises(SourceError) as info:
        read_sample(str(bad))
    assert str(bad) in str(info.value) and "(line 3)" in str(info.value)
    with pytest.raises(SourceError, match="unknown file type"):
        read_sample(str(tmp_path / "x.xlsx"))


def test_profile_round_trip_and_cache(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    reference = {"x": rng.normal(0, 1, 500), "c": np.array(["a", "b"] * 250, dtype=object)}
    profile = build_profile(reference)
    save_profile(profile, tmp_path / "p.npz")
    loaded = load_profile(tmp_path / "p.npz")
    current = {"x": rng.normal(0.2, 1, 500), "c": np.array(["a"] * 300 + ["b"] * 200, dtype=object)}
    assert compare(loaded, current, DriftPolicy()) == compare(profile, current, DriftPolicy())
    saved, read = profile.features["x"].grid, loaded.features["x"].grid  # type: ignore[union-attr]
    assert (saved.minimum, saved.maximum, saved.center, saved.spread, saved.low, saved.scale) == (
        read.minimum, read.maximum, read.center, read.spread, read.low, read.scale)
    assert saved.cumulative.tolist() == read.cumulative.tolist()

    ref_file = write_csv(tmp_path / "ref.csv", "x", [str(v) for v in reference["x"]])
    built: list[int] = []

    def build() -> object:
        built.append(1)
        return profile

    _first, hit1 = cached_profile(tmp_path / "cache", expand(str(ref_file)), 10, [], build)  # type: ignore[arg-type]
    _second, hit2 = cached_profile(tmp_path / "cache", expand(str(ref_file)), 10, [], build)  # type: ignore[arg-type]
    assert (hit1, hit2, len(built)) == (False, True, 1)
    assert cache_key(expand(str(ref_file)), 10, []) != cache_key(expand(str(ref_file)), 20, [])
    ref_file.write_text("x\n1\n2\n")
    assert cache_key(expand(str(ref_file)), 10, []) != next((tmp_path / "cache").glob("*.npz")).stem


def test_profiles_unused_for_the_retention_are_pruned_and_a_hit_keeps_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    profile = build_profile({"x": rng.normal(0, 1, 300)})
    cache = tmp_path / "profiles"
    files = [write_csv(tmp_path / f"ref{i}.csv", "x", [str(i), "1", "2"]) for i in range(2)]
    for file in files:
        cached_profile(cache, expand(str(file)), 10, [], lambda: profile)
    (used, unused) = (cache / f"{cache_key(expand(str(f)), 10, [])}.npz" for f in files)
    long_ago = time.time() - 40 * 86400
    for path in (used, unused):
        os.utime(path, (long_ago, long_ago))
    _profile, hit = cached_profile(cache, expand(str(files[0])), 10, [], lambda: profile)
    assert hit  # read from the cache, which marks it as in use
    assert prune_profiles(cache, older_than=time.time() - 30 * 86400) == 1
    assert used.exists() and not unused.exists()
    assert prune_profiles(tmp_path / "absent", older_than=time.time()) == 0


def _write_unsupported(folder: Path) -> dict[str, tuple[Path, str]]:
    """Files that were tracebacks (or a segfault) before, with the one line each must give."""
    files = {}
    path = folder / "list.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "l": [[1], [2]]}), path)
    files["list"] = (path, "column 'l' holds nested values (list<element: int64>)")
    path = folder / "struct.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "s": [{"x": 1}, {"x": 2}]}), path)
    files["struct"] = (path, "column 's' holds nested values (struct<x: int64>)")
    path = folder / "binary.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "b": pa.array([b"ok", b"\xff"], pa.binary())}), path)
    files["binary"] = (path, "column 'b' row 2 is not UTF-8 text")
    path = folder / "latin1.csv"
    path.write_bytes(b"a,b\n1,x\n2,caf\xe9\n")
    files["latin1"] = (path, "column 'b' row 2 is not UTF-8 text")
    path = folder / "nested.jsonl"
    path.write_text('{"a": 1, "b": {"c": 2}}\n')
    files["nested"] = (path, "column 'b' holds nested values (struct<c: int64>)")
    path = folder / "deep.jsonl"
    path.write_text('{"a": 1}\n{"a": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    files["deep"] = (path, "line 2 has more than 32 opening brackets: nested values are not "
                           "supported")
    return files


@pytest.mark.parametrize("kind", ["list", "struct", "binary", "latin1", "nested", "deep"])
def test_unsupported_values_are_one_line_naming_file_column_and_row(tmp_path: Path,
                                                                     kind: str) -> None:
    path, message = _write_unsupported(tmp_path)[kind]
    with pytest.raises(SourceError) as info:
        read_sample(str(path))
    assert str(info.value) == f"{path}: {message}" or message in str(info.value)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow
def test_the_drift_command_reports_a_deep_jsonl_file_in_one_line(tmp_path: Path) -> None:
    """A deeply nested JSON Lines file segfaulted the process (exit 139) in pyarrow's reader."""
    import subprocess
    import sys

    path, message = _write_unsupported(tmp_path)["deep"]
    proc = subprocess.run([sys.executable, "-m", "lifecycled", "drift", "--reference", str(path),
                           "--current", str(path)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_cached_profile_is_mapped_from_its_file_and_a_truncated_one_is_rebuilt(
        tmp_path: Path) -> None:
    """Loading maps the arrays from the file (read-only, no copy), equal to what ``np.load``
    reads; a cache file cut short is rebuilt, not an error."""
    rng = np.random.default_rng(3)
    profile = build_profile({"x": rng.normal(0, 1, 2000),
                             "c": np.array(["a", "b", "c", "d"] * 500, dtype=object)})
    path = tmp_path / "p.npz"
    save_profile(profile, path)
    loaded = load_profile(path)
    values = loaded.features["x"].sorted_values  # type: ignore[union-attr]
    base = values
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    assert isinstance(base, mmap.mmap) and not values.flags.writeable  # the file's pages
    with np.load(path) as data:
        assert np.array_equal(data["0_values"], values)
    assert loaded.features["c"].categories == ("a", "b", "c", "d")  # type: ignore[union-attr]
    ref_file = write_csv(tmp_path / "ref.csv", "x", [str(v) for v in rng.normal(0, 1, 300)])
    cached_profile(tmp_path / "cache", expand(str(ref_file)), 10, [], lambda: profile)
    (cached,) = (tmp_path / "cache").glob("*.npz")
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])
    rebuilt: list[int] = []
    _, hit = cached_profile(tmp_path / "cache", expand(str(ref_file)), 10, [],
                            lambda: rebuilt.append(1) or profile)  # type: ignore[arg-type,func-returns-value]
    assert (hit, rebuilt) == (False, [1])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.dictionaries(st.text(max_size=8), st.one_of(
    st.text(alphabet='[]{}"\\ab\u00e9', max_size=80), st.integers(), st.none()), max_size=5),
    min_size=1, max_size=6))
@pytest.mark.slow
def test_brackets_inside_strings_never_count_as_nesting(rows: list[dict[str, object]]) -> None:
    """More than 32 brackets inside a JSON Lines *string* value were refused as nesting: any
    flat object, whatever its strings hold (quotes and backslashes escaped by json.dumps),
    passes; a line nested 40 deep is still refused."""
    from lifecycled.sources.samples import MAX_BRACKETS_PER_LINE, check_flat_lines

    rows = [*rows, {"note": 'a "quoted" ' + "[" * 100 + "\\" + "{" * 40}]  # 140 in a string
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    check_flat_lines("rows.jsonl", body)
    nested = body + b'{"a": ' + b"[" * (MAX_BRACKETS_PER_LINE + 8) + b"]" * (
        MAX_BRACKETS_PER_LINE + 8) + b"}\n"
    with pytest.raises(SourceError, match=f"line {len(rows) + 1} has more than"):
        check_flat_lines("rows.jsonl", nested)
