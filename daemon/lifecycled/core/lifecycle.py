"""The status machine: the path of allowed moves to a status, and the next version number.
The graph itself is a domain rule (``lifecycled.domain.TRANSITIONS``)."""

from __future__ import annotations

import collections
import re

from lifecycled.domain import TRANSITIONS, Status, check_transition
from lifecycled.errors import InputError, TransitionError

__all__ = ["TRANSITIONS", "check_transition", "next_version", "promotion_path"]



def promotion_path(current: Status, target: Status) -> list[Status]:
    """The shortest sequence of allowed moves from ``current`` to ``target`` (excluding
    ``current``); TransitionError when the graph has none. Moves to failed are never taken."""
    queue: collections.deque[list[Status]] = collections.deque([[current]])
    seen = {current}
    while queue:
        path = queue.popleft()
        if path[-1] == target:
            return path[1:]
        for step in sorted(TRANSITIONS[path[-1]] - {Status.FAILED} - seen, key=list(Status).index):
            seen.add(step)
            queue.append([*path, step])
    raise TransitionError(f"no sequence of allowed moves leads from {current.value} to "
                          f"{target.value}")


_INT_RE = re.compile(r"^\d+$")
_SEMVER_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def next_version(version: str) -> str:
    """Return the version after ``version``: ``"3" -> "4"``, ``"1.2.0" -> "1.2.1"``."""
    if _INT_RE.match(version):
        return str(int(version) + 1)
    match = _SEMVER_RE.match(version)
    if match:
        major, minor, patch = match.groups()
        return f"{major}.{minor}.{int(patch) + 1}"
    raise InputError(f"cannot compute the next version of {version!r}: expected N or X.Y.Z")
