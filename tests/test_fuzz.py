"""Fuzzing the three kinds of file a user hands lifecycled (configuration, registration documents,
data samples): whatever the bytes, the command ends with exit 0 (the file was fine) or one clear
problem per line and exit 2 (or a drift verdict's 1/3), never a traceback, and a refused
registration leaves the state exactly as it was. Seeded by hypothesis, bounded in examples."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifecycled.cli import main

from tests.helpers import ROOT

SHIPPED = (ROOT / "config" / "lifecycled.yaml").read_bytes()
REGISTRATION = (b"- name: credit_scoring\n  version: '7'\n  owner_team: risk\n"
                b"  business_domain: lending\n  thresholds: {min_accuracy: 0.9}\n")
CSV = b"a,b,c\n1.5,x,2026-01-01T00:00:00\n2.5,y,2026-01-02T00:00:00\n3.5,,2026-01-03T00:00:00\n"
JSONL = b'{"a": 1.5, "b": "x"}\n{"a": 2.5, "b": "y"}\n{"a": null, "b": "z"}\n'
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few random edits: bytes flipped, inserted or cut, or a tail of YAML
    and JSON punctuation that nests, aliases or breaks encodings."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.integers(0, max(0, len(data) - 1)))
        edit = draw(st.sampled_from(["flip", "insert", "cut", "splice"]))
        if edit == "flip" and data:
            data[where] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[where:where] = draw(st.sampled_from([
                b"\xff\xfe", b"&a ", b"*a", b"[" * 200, b"{" * 200, b": ", b"\n  - ",
                b"!!python/object:os.system ''", b".inf", b".nan", b"1e400", b"-1",
                b"99999999999999999999d", b"\x00", b'"', b"\t"]))
        elif edit == "cut":
            del data[where:where + draw(st.integers(1, 40))]
        else:
            data[where:where] = draw(st.binary(max_size=20))
    return bytes(data)


def dump(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


def one_problem_per_line(err: str) -> None:
    assert "Traceback" not in err
    for line in err.strip().splitlines():
        assert line.startswith(("lifecycled: ", "  ", "usage:")) or "WARNING" in line, line


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    config = tmp_path / "lifecycled.yaml"
    config.write_text(f"daemon: {{state_url: 'sqlite:///{tmp_path / 'state.db'}'}}\n")
    return tmp_path


@FUZZ
@given(text=mutated(SHIPPED))
@pytest.mark.slow
def test_any_configuration_is_valid_or_refused_in_lines(workspace: Path, text: bytes,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = workspace / "fuzzed.yaml"
    config.write_bytes(text)
    code = main(["check-config", "--config", str(config)])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    one_problem_per_line(err)


@FUZZ
@given(text=mutated(REGISTRATION))
@pytest.mark.slow
def test_a_refused_registration_changes_nothing(workspace: Path, text: bytes,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = workspace / "lifecycled.yaml"
    seed = workspace / "seed.yaml"
    seed.write_bytes(REGISTRATION.replace(b"'7'", b"'1'"))
    if not (workspace / "state.db").exists():
        assert main(["models", "register", "--file", str(seed), "--config", str(config)]) == 0
    before = dump(workspace / "state.db")
    document = workspace / "fuzzed.yaml"
    document.write_bytes(text)
    code = main(["models", "register", "--file", str(document), "--config", str(config)])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    one_problem_per_line(err)
    if code != 0:
        assert dump(workspace / "state.db") == before


def _parquet_bytes(folder: Path) -> bytes:
    path = folder / "seed.parquet"
    pq.write_table(pa.table({"a": np.arange(5, dtype=float), "b": list("vwxyz")}), path)
    return path.read_bytes()


@FUZZ
@given(kind=st.sampled_from(["csv", "jsonl", "parquet"]), data=st.data())
@pytest.mark.slow
def test_any_data_file_is_judged_or_refused_in_one_line(workspace: Path, kind: str,
                                                        data: st.DataObject,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    seed = {"csv": CSV, "jsonl": JSONL, "parquet": _parquet_bytes(workspace)}[kind]
    fuzzed = workspace / f"fuzzed.{kind}"
    fuzzed.write_bytes(data.draw(mutated(seed)))
    reference = workspace / f"reference.{kind}"
    reference.write_bytes(seed)
    code = main(["drift", "--reference", str(reference), "--current", str(fuzzed),
                 "--config", str(workspace / "lifecycled.yaml")])
    err = capsys.readouterr().err
    assert code in (0, 1, 2, 3), err
    one_problem_per_line(err)
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err


PARSE_ALL = """
import sys
from pathlib import Path
from lifecycled.errors import SourceError
from lifecycled.api import read_body
refused = read = 0
for path in sorted(Path(sys.argv[1]).glob("*.arrow")):
    try:
        read_body("POST", path.read_bytes(), sys.argv[2])  # every value touched, as a push
        read += 1
    except SourceError:
        refused += 1
print(read, refused)
"""


@pytest.mark.parametrize("compression", [None, "zstd"])
@pytest.mark.parametrize("media", ["application/vnd.apache.arrow.stream",
                                   "application/vnd.apache.arrow.file"])
@pytest.mark.slow
def test_corrupted_arrow_bodies_are_refused_never_a_crash(tmp_path: Path, media: str,
                                                          compression: str | None) -> None:
    """A malformed Arrow IPC push killed the daemon with SIGSEGV (pyarrow trusts the offsets
    in a body): 150 bodies of 1,000 rows with 1-8 random bytes changed each, plain and
    compressed (whose metadata the size bound reads), parsed by the daemon's own parser in a
    child process, so that a crash fails this test instead of pytest."""
    import random
    import subprocess
    import sys

    import pyarrow.ipc as ipc

    rng = np.random.default_rng(1)
    n = 1000
    table = pa.table({"id": [f"tx-{i}" for i in range(n)], "timestamp": rng.uniform(0, 1, n),
                      "prediction": rng.integers(0, 2, n), "score": rng.uniform(0, 1, n)})
    sink = pa.BufferOutputStream()
    options = ipc.IpcWriteOptions(compression=compression)
    writer = ipc.new_stream(sink, table.schema, options=options) if media.endswith("stream") \
        else ipc.new_file(sink, table.schema, options=options)
    with writer:
        writer.write_table(table, max_chunksize=250)
    body = sink.getvalue().to_pybytes()
    draw = random.Random(7)
    for k in range(150):
        corrupted = bytearray(body)
        for _ in range(draw.randint(1, 8)):
            corrupted[draw.randrange(len(corrupted))] = draw.randrange(256)
        (tmp_path / f"{k:03d}.arrow").write_bytes(bytes(corrupted))
    done = subprocess.run([sys.executable, "-c", PARSE_ALL, str(tmp_path), media],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the parser crashed ({done.returncode}): {done.stderr[-2000:]}"
    read, refused = map(int, done.stdout.split())
    assert read + refused == 150 and refused > 0
