"""Every read a drift check makes of its files, behind one object: the samples, the files'
signatures and content fingerprints, and the cached reference profiles. The context holds one
(``Context.reader``); a test hands in a subclass to see what a pass reads, or to change a file
between two reads, instead of patching a module's functions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when used: a command that reads no file does not load pyarrow
    from lifecycled.core.profile import ReferenceProfile
    from lifecycled.sources.files import DataFile
    from lifecycled.sources.profiles import Loaded
    from lifecycled.sources.samples import Sample


class Reader:
    def sample(self, pattern: str, **options: Any) -> Sample:
        """The rows of ``pattern`` (``sources.samples.read_sample`` and its options)."""
        from lifecycled.sources.samples import read_sample

        return read_sample(pattern, **options)

    def signature(self, file: DataFile) -> str | None:
        """What changes whenever a local file's bytes may have (``DataFile.signature``)."""
        return file.signature()

    def fingerprint(self, file: DataFile) -> str:
        """The hash of a file's bytes, remembered while a local file's signature holds
        (``DataFile.fingerprint``); ``digest`` when it reads them."""
        return file.fingerprint(digest=self.digest)

    def digest(self, file: DataFile) -> str:
        """The hash of a file's bytes, read now (``DataFile.digest``)."""
        return file.digest()

    def load_profile(self, path: Path) -> ReferenceProfile:
        """A cached reference profile (``sources.profiles.load_profile``)."""
        from lifecycled.sources.profiles import load_profile

        return load_profile(path)

    def load_cached(self, cache_dir: Path, files: Sequence[DataFile], bins: int,
                    categorical: Sequence[str]) -> Loaded | None:
        """The cached profile of local ``files``, loaded ahead (``sources.profiles
        .load_cached``)."""
        from lifecycled.sources.profiles import load_cached

        return load_cached(cache_dir, files, bins, categorical, load=self.load_profile)
