"""Where data files live: a local path, or a URL read through ``pyarrow.fs`` (``s3://`` and
S3-compatible endpoints, ``gs://``, ``hdfs://``, ``file://``).

Credentials never come from the URL (nor from the configuration): S3 takes them from the
environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_PROFILE``), its files (``~/.aws``) or the instance's role, as every AWS tool does; GCS and
HDFS from their own default chains. An S3-compatible endpoint is named in the URL's query
(``s3://bucket/ref.parquet?endpoint_override=minio:9000&scheme=http``) or by
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``. Every S3 request has a deadline (``timeout``)
and one attempt, so a hung store costs one deadline.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from lifecycled.errors import SourceError

DEFAULT_TIMEOUT = 30.0  # seconds, per file operation
REMOTE_SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs")
S3_OPTIONS = {"region", "scheme", "endpoint_override", "force_virtual_addressing"}
SECRET_OPTIONS = {"access_key", "secret_key", "session_token", "password"}
_WILDCARD = re.compile(r"[*?\[]")
_MEMO_LIMIT = 10_000  # local files whose hash is remembered (by their signature)
_fingerprints: dict[str, tuple[str, str]] = {}  # local path -> (signature, hash)


@dataclass(frozen=True)
class DataFile:
    """One file: how the user wrote it (what messages name), its filesystem and its path there."""

    uri: str
    fs: pafs.FileSystem
    path: str

    def __str__(self) -> str:
        return self.uri

    @property
    def suffix(self) -> str:
        return Path(self.path).suffix

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as stream:
            data: bytes = stream.read()
            return data

    def open(self) -> Any:
        """A random-access file (what Parquet needs)."""
        return self.fs.open_input_file(self.path)

    def stamp(self) -> str:
        """Its size and modification time: what tells a stream a file changed since it read it
        (a stream reads new files whole; rows it already holds are skipped by id)."""
        info = self.fs.get_file_info(self.path)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(self.uri)
        return f"{info.size}:{info.mtime_ns}"

    def signature(self) -> str | None:
        """What changes whenever a local file's bytes may have: device, inode, size, and the
        modification and change times in nanoseconds (the change time cannot be set back, as
        ``touch -d`` or ``rsync -t`` set the modification time). None for a file behind a URL:
        an object store's times have a resolution of a second."""
        if not self.local:
            return None
        info = os.stat(self.path)
        return (f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:"
                f"{info.st_ctime_ns}")

    def fingerprint(self) -> str:
        """The hash of the file's bytes; for a local file remembered while its ``signature``
        holds, so a pass over hundreds of unchanged references does not read them all."""
        signature = self.signature()
        if signature is not None:
            known = _fingerprints.get(self.path)
            if known is not None and known[0] == signature:
                return known[1]
        found = self._digest()
        if signature is not None:
            if len(_fingerprints) >= _MEMO_LIMIT:
                _fingerprints.clear()
            _fingerprints[self.path] = (signature, found)
        return found

    def _digest(self) -> str:
        digest = hashlib.sha256()
        with self.fs.open_input_stream(self.path) as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def is_url(text: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text))


def _redacted(text: str) -> str:
    """The URL as messages show it: no query (its options) and no user or password."""
    parts = urlsplit(text)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(query="", netloc=netloc).geturl()


def _filesystem(text: str, timeout: float) -> tuple[pafs.FileSystem, str]:
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if parts.username or parts.password:
        raise SourceError(_redacted(text), "credentials in the URL are refused: give them in the "
                                           "environment or the provider's default chain")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    secret = SECRET_OPTIONS & set(options)
    if secret:
        raise SourceError(_redacted(text), f"{', '.join(sorted(secret))} in the URL is refused: "
                                           f"give credentials in the environment or the "
                                           f"provider's default chain")
    if scheme == "file":
        return pafs.LocalFileSystem(), parts.path
    if scheme == "s3":
        unknown = set(options) - S3_OPTIONS
        if unknown:
            raise SourceError(_redacted(text), f"unknown S3 URL option(s) {sorted(unknown)}: use "
                                               f"{', '.join(sorted(S3_OPTIONS))}")
        if not parts.netloc:
            raise SourceError(text, "an s3:// URL names a bucket: s3://BUCKET/KEY")
        kwargs: dict[str, Any] = {
            "request_timeout": timeout, "connect_timeout": timeout,
            # one attempt: the deadline is the caller's, not multiplied by retries
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=1)}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint and "endpoint_override" not in options:  # as the AWS tools read it
            named = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
            kwargs.update(endpoint_override=named.netloc, scheme=named.scheme)
        for key in ("region", "scheme", "endpoint_override"):
            if key in options:
                kwargs[key] = options[key]
        if "force_virtual_addressing" in options:
            kwargs["force_virtual_addressing"] = options["force_virtual_addressing"] in (
                "1", "true", "yes")
        try:
            return pafs.S3FileSystem(**kwargs), parts.netloc + parts.path
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise SourceError(_redacted(text), f"cannot use S3: {exc}") from exc
    if scheme in REMOTE_SCHEMES:
        try:
            fs, path = pafs.FileSystem.from_uri(text)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise SourceError(_redacted(text), f"cannot open the filesystem: {exc}") from exc
        return fs, path
    raise SourceError(text, f"unsupported URL scheme {scheme!r}: use a local path, file://, "
                            f"s3://, gs:// or hdfs://")


def expand(pattern: str, *, timeout: float = DEFAULT_TIMEOUT,
           allow_empty: bool = False) -> list[DataFile]:
    """The files a path, URL or glob names (sorted); SourceError when a glob matches none
    (unless ``allow_empty``: a stream's folder with nothing in it yet)."""
    if not is_url(pattern):
        if _WILDCARD.search(pattern):
            import glob

            found = sorted(glob.glob(pattern))
            if not found and not allow_empty:
                raise SourceError(pattern, "no file matches this pattern")
            return [DataFile(p, pafs.LocalFileSystem(), str(Path(p).absolute())) for p in found]
        return [DataFile(pattern, pafs.LocalFileSystem(), str(Path(pattern).absolute()))]
    fs, path = _filesystem(pattern, timeout)
    shown = _redacted(pattern)
    if not _WILDCARD.search(path):
        return [DataFile(shown, fs, path)]
    # list below the last folder without a wildcard, then match the whole path
    head = _WILDCARD.split(path, 1)[0].rsplit("/", 1)[0]
    try:
        infos = fs.get_file_info(pafs.FileSelector(head, recursive=True, allow_not_found=True))
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(shown, f"cannot list {head}: {exc}") from exc
    prefix = shown[: len(shown) - len(path)] if shown.endswith(path) else ""
    found = sorted(i.path for i in infos if i.type == pafs.FileType.File
                   and fnmatch.fnmatchcase(i.path, path))
    if not found and not allow_empty:
        raise SourceError(shown, "no file matches this pattern")
    return [DataFile(prefix + p, fs, p) for p in found]
