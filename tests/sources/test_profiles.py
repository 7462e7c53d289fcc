"""The reference's hash remembered in the cache directory: a new process (the second
``lifecycled drift``) does not read an unchanged reference again, and any change of the file,
even one that keeps its size and puts its modification time back, is hashed afresh."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lifecycled.sources import files
from lifecycled.sources.files import DataFile, expand
from lifecycled.sources.profiles import FINGERPRINT_DIR, prune_profiles, remembered_fingerprint


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths whose bytes were hashed; each call stands for a new process (no memo)."""
    seen: list[str] = []
    digest = DataFile.digest

    def counting(self: DataFile) -> str:
        seen.append(self.path)
        return digest(self)

    monkeypatch.setattr(DataFile, "digest", counting)
    return seen


def local(path: Path) -> DataFile:
    (found,) = expand(str(path))
    return found


def fresh_process() -> None:
    files._fingerprints.clear()


def test_an_unchanged_reference_is_hashed_once(tmp_path: Path, hashed: list[str]) -> None:
    reference = tmp_path / "reference.csv"
    reference.write_text("x\n1\n2\n")
    first = remembered_fingerprint(tmp_path / "cache", local(reference))
    fresh_process()
    again = remembered_fingerprint(tmp_path / "cache", local(reference))
    assert first == again and hashed == [str(reference)]
    stat = reference.stat()
    reference.write_text("x\n1\n3\n")  # same size, and the modification time set back
    os.utime(reference, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    fresh_process()
    changed = remembered_fingerprint(tmp_path / "cache", local(reference))
    assert changed != first and len(hashed) == 2


def test_an_unreadable_memo_is_hashed_again(tmp_path: Path, hashed: list[str]) -> None:
    reference = tmp_path / "reference.csv"
    reference.write_text("x\n1\n")
    cache = tmp_path / "cache"
    first = remembered_fingerprint(cache, local(reference))
    (memo,) = (cache / FINGERPRINT_DIR).glob("*.txt")
    memo.write_text("garbage")
    fresh_process()
    assert remembered_fingerprint(cache, local(reference)) == first
    assert len(hashed) == 2
    assert prune_profiles(cache, older_than=memo.stat().st_mtime + 1) == 1  # housekeeping
    assert not list((cache / FINGERPRINT_DIR).glob("*.txt"))


@given(st.sampled_from(["<f8", "<i8", "|b1", "<U7", "<f4"]),
       st.lists(st.integers(0, 4), max_size=3), st.booleans())
def test_the_array_header_is_read_as_numpy_reads_it(kind: str, shape: list[int],
                                                    fortran: bool) -> None:
    import io

    import numpy as np
    import numpy.lib.format as npformat
    from lifecycled.sources.profiles import _array_header

    array = np.zeros(tuple(shape), dtype=kind)
    buffer = io.BytesIO()
    np.save(buffer, np.asfortranarray(array) if fortran else array)
    buffer.seek(0)
    found, at = _array_header(buffer), buffer.tell()
    buffer.seek(0)
    npformat.read_magic(buffer)
    assert found == npformat.read_array_header_1_0(buffer) and at == buffer.tell()
