"""The status machine: which moves are allowed, and the next version number."""

from __future__ import annotations

import re

from lifecycled.domain import Status
from lifecycled.errors import InputError, TransitionError

S = Status

# The lifecycle graph. Any status but retired may also move to failed (added below).
_FORWARD: dict[Status, frozenset[Status]] = {
    S.DEVELOPING: frozenset({S.TESTING}),
    S.TESTING: frozenset({S.DEVELOPING, S.STAGING}),
    S.STAGING: frozenset({S.TESTING, S.PRODUCTION}),
    S.PRODUCTION: frozenset({S.DEPRECATED}),
    S.DEPRECATED: frozenset({S.PRODUCTION, S.RETIRED}),
    S.FAILED: frozenset({S.TESTING, S.RETIRED}),
    S.RETIRED: frozenset(),
}

TRANSITIONS: dict[Status, frozenset[Status]] = {
    status: targets | ({S.FAILED} if status not in (S.RETIRED, S.FAILED) else frozenset())
    for status, targets in _FORWARD.items()
}


def allowed_targets(current: Status) -> frozenset[Status]:
    """Return the statuses reachable from ``current`` in one move."""
    return TRANSITIONS[current]


def check_transition(what: str, current: Status, target: Status) -> None:
    """Raise TransitionError unless ``current -> target`` is an allowed move for ``what``."""
    if target in TRANSITIONS[current]:
        return
    if current == target:
        raise TransitionError(f"{what} is already {current.value}")
    allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none: it is final"
    raise TransitionError(
        f"cannot move {what} from {current.value} to {target.value} (allowed: {allowed})"
    )


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
