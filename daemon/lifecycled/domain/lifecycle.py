"""The lifecycle: each version's statuses and the graph between them, the update job's states
in order, and the kinds of history row."""

from __future__ import annotations

import enum

from lifecycled.errors import TransitionError


class JobState(enum.StrEnum):
    """An update job's states, in the order a job moves through them (``order``: a job never
    moves back, except to failed)."""

    PENDING = "pending"
    DISPATCHED = "dispatched"
    TRAINING = "training"
    VALIDATING = "validating"
    DEPLOYING = "deploying"
    COMPARING = "comparing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def order(self) -> int:
        return _JOB_ORDER[self]

    @property
    def active(self) -> bool:
        """Still moving (not completed, failed or cancelled)."""
        return self.order < _JOB_ORDER[JobState.COMPLETED]


_JOB_ORDER = {state: index for index, state in enumerate(JobState)}
UPDATE_JOB_STATES = tuple(state.value for state in JobState)


class Status(enum.StrEnum):
    """Lifecycle status of a model version."""

    DEVELOPING = "developing"
    TESTING = "testing"
    STAGING = "staging"
    PRODUCTION = "production"
    DEPRECATED = "deprecated"
    RETIRED = "retired"
    FAILED = "failed"


S = Status
# The lifecycle graph (DESIGN.md section 5). Any status but retired may also move to failed.
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


class HistoryKind(enum.StrEnum):
    """What a history row records."""

    REGISTERED = "registered"
    METADATA_UPDATED = "metadata_updated"
    STATUS_CHANGED = "status_changed"
    REFERENCE_FROZEN = "reference_frozen"  # a drift reference frozen from Triton's traces
    COMPARISON = "comparison"  # a champion/challenger comparison opened or held

