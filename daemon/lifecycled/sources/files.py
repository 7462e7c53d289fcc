"""Where data files live: a local path, or a URL read through ``pyarrow.fs`` (``s3://`` and
S3-compatible endpoints, ``gs://``, ``hdfs://``, ``file://``).

Credentials never come from the URL (nor from the configuration): S3 takes them from the
environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_PROFILE``), its files (``~/.aws``) or the instance's role, as every AWS tool does; GCS and
HDFS from their own default chains. An S3-compatible endpoint is named in the URL's query
(``s3://bucket/ref.parquet?endpoint_override=minio:9000&scheme=http``) or by
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``.

Every operation on a file behind a URL (listing, stat, a whole read) has one total deadline
(``timeout``): the SDK's own timeouts restart at each byte, so an endpoint that drips its answer
would hold a read for ever. The operation runs in a thread of its own and the caller stops
waiting at the deadline; the abandoned read ends when its endpoint does, and until then the same
file is not read again (one thread per file, at most).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
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
_abandoned: dict[str, threading.Thread] = {}  # URL -> a read past its deadline, still running
_abandoned_lock = threading.Lock()
T = TypeVar("T")


def reads_abandoned() -> bool:
    """Whether a read that passed its deadline is still running."""
    with _abandoned_lock:
        return any(thread.is_alive() for thread in _abandoned.values())


def within(what: str, timeout: float, operation: Callable[[], T]) -> T:
    """``operation()``, or SourceError once ``timeout`` seconds have passed in all (its thread
    is left to end on its own; ``what`` is not tried again until it has)."""
    with _abandoned_lock:
        running = _abandoned.get(what)
        if running is not None and running.is_alive():
            raise SourceError(what, "an earlier read timed out and its endpoint has not ended it "
                                    "yet: not read again until it does")
        _abandoned.pop(what, None)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = operation()
        except BaseException as exc:  # handed to the caller as it is
            outcome["error"] = exc

    thread = threading.Thread(target=work, name=f"read {what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        with _abandoned_lock:
            _abandoned[what] = thread
        raise SourceError(what, f"timed out: not read within {timeout:g} s (the deadline is for "
                                f"the whole read)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@dataclass(frozen=True)
class DataFile:
    """One file: how the user wrote it (what messages name), its filesystem and its path there,
    and for a file behind a URL the total deadline of each operation on it."""

    uri: str
    fs: pafs.FileSystem
    path: str
    timeout: float = DEFAULT_TIMEOUT

    def within(self, operation: Callable[[], T]) -> T:
        """``operation()`` under this file's total deadline (a local file's runs as it is)."""
        return operation() if self.local else within(self.uri, self.timeout, operation)

    def __str__(self) -> str:
        return self.uri

    @property
    def suffix(self) -> str:
        return Path(self.path).suffix

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def read_bytes(self) -> bytes:
        def read() -> bytes:
            with self.fs.open_input_stream(self.path) as stream:
                data: bytes = stream.read()
                return data
        return self.within(read)

    def stamp(self) -> str:
        """Its size and modification time: what tells a stream a file changed since it read it
        (a stream reads new files whole; rows it already holds are skipped by id)."""
        info = self.within(lambda: self.fs.get_file_info(self.path))
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

    def fingerprint(self, digest: Callable[[DataFile], str] | None = None) -> str:
        """The hash of the file's bytes (``digest``, by default ``DataFile.digest``); for a
        local file remembered while its ``signature`` holds, so a pass over hundreds of
        unchanged references does not read them all."""
        signature = self.signature()
        if signature is not None:
            known = _fingerprints.get(self.path)
            if known is not None and known[0] == signature:
                return known[1]
        found = (digest or DataFile.digest)(self)
        if signature is not None:
            if len(_fingerprints) >= _MEMO_LIMIT:
                _fingerprints.clear()
            _fingerprints[self.path] = (signature, found)
        return found

    def digest(self) -> str:
        """The SHA-256 of the file's bytes, read now."""
        def read() -> str:
            digest = hashlib.sha256()
            with self.fs.open_input_stream(self.path) as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()
        return self.within(read)


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
            return _s3_filesystem(_redacted(text), kwargs, timeout), parts.netloc + parts.path
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


# what the AWS SDK reads credentials and settings from: a filesystem made under other values
# is not reused
_AWS_ENVIRONMENT = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                    "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
                    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")
_S3_FILESYSTEMS: dict[tuple[Any, ...], pafs.S3FileSystem] = {}
_S3_KEPT = 64  # distinct S3 settings kept; past that a filesystem is made for each use


def _s3_filesystem(shown: str, kwargs: dict[str, Any], timeout: float) -> pafs.S3FileSystem:
    """One S3 filesystem per set of settings, made once. pyarrow makes (and drops) an S3 client
    under a process-wide lock that every request in flight holds shared, so a new one waits for
    an endpoint that drips its answer: made under the deadline, then kept."""
    key = (tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k != "retry_strategy")),
           tuple(os.environ.get(name) for name in _AWS_ENVIRONMENT))
    with _abandoned_lock:
        found = _S3_FILESYSTEMS.get(key)
    if found is not None:
        return found

    def make() -> pafs.S3FileSystem:
        made = pafs.S3FileSystem(**kwargs)
        with _abandoned_lock:
            if len(_S3_FILESYSTEMS) < _S3_KEPT:
                _S3_FILESYSTEMS.setdefault(key, made)
        return made

    return within(shown, timeout, make)


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
        return [DataFile(shown, fs, path, timeout)]
    # list below the last folder without a wildcard, then match the whole path
    head = _WILDCARD.split(path, 1)[0].rsplit("/", 1)[0]
    try:
        infos = within(shown, timeout, lambda: fs.get_file_info(
            pafs.FileSelector(head, recursive=True, allow_not_found=True)))
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(shown, f"cannot list {head}: {exc}") from exc
    prefix = shown[: len(shown) - len(path)] if shown.endswith(path) else ""
    found = sorted(i.path for i in infos if i.type == pafs.FileType.File
                   and fnmatch.fnmatchcase(i.path, path))
    if not found and not allow_empty:
        raise SourceError(shown, "no file matches this pattern")
    return [DataFile(prefix + p, fs, p, timeout) for p in found]
