"""Helpers the tests share (not fixtures: those are in conftest.py)."""

from __future__ import annotations


class Clock:
    """A clock a test sets and advances: ``now`` seconds since the epoch (a fixed day unless
    given), returned by calling it, as ``Context.clock`` is called."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
