"""Cache of reference profiles in the state directory, keyed by the reference file's content hash
and the binning settings, stored as ``.npz`` (read with ``allow_pickle=False``)."""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.lib.format as npformat
import pyarrow as pa

from lifecycled.core.ecdf import Grid
from lifecycled.core.profile import CategoricalProfile, NumericProfile, Profile, ReferenceProfile
from lifecycled.sources.files import DataFile

log = logging.getLogger(__name__)
PROFILE_DIR = "profiles"  # in the state directory
# 2: numeric features carry their bucket grid; 3: tie-aware bin edges; 4: the rest of a
# column beside its dominant values gets quantile bins
FORMAT_VERSION = 4


def cache_key(files: Sequence[DataFile], bins: int, categorical: Sequence[str],
              cache_dir: Path | None = None) -> str:
    """Hash of the files' bytes (local or behind a URL), the bin count and the categorical
    columns. With ``cache_dir``, a local file's hash is remembered there beside its signature
    (``remembered_fingerprint``), so a new process does not read it again while it is
    unchanged."""
    digest = hashlib.sha256()
    for file in files:
        digest.update((remembered_fingerprint(cache_dir, file) if cache_dir is not None
                       else file.fingerprint()).encode())
    digest.update(json.dumps({"v": FORMAT_VERSION, "bins": bins,
                              "categorical": sorted(categorical)}).encode())
    return digest.hexdigest()


FINGERPRINT_DIR = "fingerprints"  # in the cache directory: one small file per reference path


def remembered_fingerprint(cache_dir: Path, file: DataFile) -> str:
    """``file.fingerprint()``, remembered in ``cache_dir`` while the local file's signature
    (device, inode, size, modification and change times) stays the same: the second
    ``lifecycled drift`` on an unchanged reference hashes nothing. Behind a URL (no signature)
    the bytes are hashed each time."""
    signature = file.signature()
    if signature is None:
        return file.fingerprint()
    memo = cache_dir / FINGERPRINT_DIR / f"{hashlib.sha256(file.path.encode()).hexdigest()}.txt"
    try:
        saved_signature, saved = memo.read_text().split("\n")[:2]
        if saved_signature == signature and len(saved) == 64:
            return saved
    except (OSError, ValueError):
        pass  # none yet, or unreadable: hash the bytes
    found = file.fingerprint()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=memo.parent, delete=False,
                                         suffix=".tmp") as handle:
            handle.write(f"{signature}\n{found}\n")
        os.replace(handle.name, memo)
    except OSError as exc:
        log.warning("cannot remember a reference's hash path=%s error=%s", memo, exc)
    return found


def save_profile(profile: ReferenceProfile, path: Path) -> None:
    """Write ``profile`` atomically (temp file, then rename)."""
    arrays: dict[str, np.ndarray] = {}
    meta: list[dict[str, object]] = []
    for i, (name, feature) in enumerate(profile.features.items()):
        extra: dict[str, object] = {}
        if isinstance(feature, NumericProfile):
            arrays[f"{i}_values"] = feature.sorted_values
            arrays[f"{i}_edges"] = feature.edges
            arrays[f"{i}_counts"] = feature.counts
            arrays[f"{i}_grid"] = feature.grid.cumulative
            grid = feature.grid
            extra = {"grid": [grid.minimum, grid.maximum, grid.center, grid.spread, grid.low,
                              grid.scale]}
            kind = "numeric"
        else:
            arrays[f"{i}_categories"] = np.array(feature.categories, dtype=str)
            arrays[f"{i}_counts"] = feature.counts
            kind = "categorical"
        meta.append({"name": name, "kind": kind, "rows": feature.rows, "missing": feature.missing,
                     **extra})
    arrays["meta"] = np.array(json.dumps({"bins": profile.bins, "features": meta}))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mapped(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of an uncompressed ``.npz`` (what ``save_profile`` writes) mapped from the
    file, read-only, instead of copied: a check touches the pages it needs, and a pass over
    hundreds of models does not copy every profile's megabytes first. None when the file holds
    anything else (a compressed member, an object array): then ``np.load`` reads it."""
    found: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, path.open("rb") as handle:
        whole = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)  # one map for all
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                return None
            handle.seek(info.header_offset)
            local = handle.read(30)  # the local file header: its name and extra field follow
            if local[:4] != b"PK\x03\x04":
                return None
            handle.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                        + int.from_bytes(local[28:30], "little"))
            shape, fortran, dtype = _array_header(handle)
            if dtype.hasobject:
                return None
            name = info.filename[:-4]
            if not shape or not int(np.prod(shape)):  # a scalar (the metadata) or empty: read
                found[name] = np.frombuffer(handle.read(dtype.itemsize), dtype).reshape(()) \
                    if shape == () else np.zeros(shape, dtype)
                continue
            found[name] = np.frombuffer(whole, dtype=dtype, count=int(np.prod(shape)),
                                        offset=handle.tell()).reshape(
                shape, order="F" if fortran else "C")  # each array keeps the map open
    return found


_SIMPLE_HEADER = re.compile(rb"\{'descr': '([<>|][a-zA-Z][0-9]{1,2})', 'fortran_order': "
                            rb"(False|True), 'shape': \(((?:[0-9]+, ?)*[0-9]*)\), \} *\n")


def _array_header(handle: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """Shape, Fortran order and dtype of the ``.npy`` member at the handle's position (left at
    its data). The plain headers ``np.savez`` writes are matched directly (numpy parses each
    with ``ast.literal_eval``, an eighth of a profile's load); anything else goes to numpy."""
    start = handle.tell()
    magic = handle.read(8)
    if magic[:6] == b"\x93NUMPY" and magic[6] == 1:
        size = int.from_bytes(handle.read(2), "little")
        found = _SIMPLE_HEADER.fullmatch(handle.read(size))
        if found is not None:
            shape = tuple(int(n) for n in found.group(3).decode().replace(" ", "").split(",")
                          if n)
            return shape, found.group(2) == b"True", np.dtype(found.group(1).decode())
    handle.seek(start)
    version = npformat.read_magic(handle)
    return (npformat.read_array_header_1_0(handle) if version == (1, 0)
            else npformat.read_array_header_2_0(handle))


def load_profile(path: Path) -> ReferenceProfile:
    """Read a profile written by ``save_profile`` (mapped from the file, ``_mapped``)."""
    try:
        mapped = _mapped(path)
    except (OSError, ValueError, zipfile.BadZipFile):
        mapped = None
    if mapped is not None:
        return _profile(mapped)
    try:
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
            return _profile({name: data[name] for name in data.files})
    except zipfile.BadZipFile as exc:  # cut short or overwritten: the caller rebuilds it
        raise ValueError(f"{path}: {exc}") from exc


def _profile(data: dict[str, np.ndarray]) -> ReferenceProfile:
    meta = json.loads(str(data["meta"]))
    features: dict[str, Profile] = {}
    for i, item in enumerate(meta["features"]):
        if item["kind"] == "numeric":
            features[item["name"]] = NumericProfile(
                data[f"{i}_values"], data[f"{i}_edges"], data[f"{i}_counts"], item["rows"],
                item["missing"], _grid(item["grid"], data[f"{i}_grid"]))
        else:
            features[item["name"]] = CategoricalProfile(
                tuple(str(c) for c in data[f"{i}_categories"]), data[f"{i}_counts"],
                item["rows"], item["missing"])
    return ReferenceProfile(features, int(meta["bins"]))


def _grid(numbers: list[float], cumulative: np.ndarray) -> Grid:
    minimum, maximum, center, spread, low, scale = (float(x) for x in numbers)
    return Grid(minimum, maximum, center, spread, low, scale, cumulative)


Loaded = tuple[Path, ReferenceProfile]  # a cached profile read ahead, and the file it came from


def profile_path(cache_dir: Path, files: Sequence[DataFile], bins: int,
                 categorical: Sequence[str]) -> Path:
    """Where the profile of ``files`` is cached: its name is the content's key."""
    return cache_dir / f"{cache_key(files, bins, categorical, cache_dir)}.npz"


def cached_profile(cache_dir: Path | None, files: Sequence[DataFile], bins: int,
                   categorical: Sequence[str], build: Callable[[], ReferenceProfile],
                   loaded: Loaded | None = None,
                   load: Callable[[Path], ReferenceProfile] | None = None
                   ) -> tuple[ReferenceProfile, bool]:
    """Return the cached profile of ``files`` (True) or build, store and return it (False).
    ``loaded`` (``load_cached``) is used when it came from the file the key names now: the
    file's name is the content's key, so the same name is the same profile. ``load`` reads a
    cached profile (``load_profile``)."""
    if cache_dir is None:
        return build(), False
    try:
        path = profile_path(cache_dir, files, bins, categorical)
    except (OSError, pa.ArrowException):  # unreadable reference: reading it says why
        return build(), False
    if path.exists():
        try:
            profile = loaded[1] if loaded is not None and loaded[0] == path \
                else (load or load_profile)(path)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("profile cache unreadable, rebuilding path=%s error=%s", path, exc)
        else:
            try:
                os.utime(path)  # in use: kept by prune_profiles
            except OSError as exc:
                log.warning("cannot mark profile cache as used path=%s error=%s", path, exc)
            return profile, True
    profile = build()
    try:
        save_profile(profile, path)
    except OSError as exc:
        log.warning("cannot write profile cache path=%s error=%s", path, exc)
    return profile, False


def load_cached(cache_dir: Path, files: Sequence[DataFile], bins: int,
                categorical: Sequence[str],
                load: Callable[[Path], ReferenceProfile] | None = None) -> Loaded | None:
    """The cached profile of local ``files``, loaded for ``cached_profile`` to take later (a
    read ahead); None when there is none, it cannot be read, or a file is behind a URL (its
    key would mean downloading it here as well)."""
    if any(file.signature() is None for file in files):
        return None
    try:
        path = profile_path(cache_dir, files, bins, categorical)
        return (path, (load or load_profile)(path)) if path.exists() else None
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None


def prune_profiles(cache_dir: Path, *, older_than: float) -> int:
    """Delete cached profiles last used before ``older_than`` (a changed reference file leaves
    its old profile behind), and remembered hashes written before it; return how many were
    deleted."""
    removed = 0
    found = [*cache_dir.glob("*.npz"), *cache_dir.glob(f"{FINGERPRINT_DIR}/*.txt")] \
        if cache_dir.is_dir() else []
    for path in found:
        try:
            if path.stat().st_mtime < older_than:
                path.unlink()
                removed += 1
        except OSError as exc:
            log.warning("cannot prune profile cache path=%s error=%s", path, exc)
    return removed
