"""One exception tree for lifecycled.

    LifecycledError
    ├── ConfigError          the configuration file is unreadable or invalid (carries every problem)
    ├── InputError           a user-supplied file or argument is malformed
    ├── NotFoundError        a model version (or other record) does not exist
    ├── TransitionError      a status change not allowed by the lifecycle graph
    ├── StoreError           the state database cannot be opened or used
    ├── SourceError          a source (Triton, Prometheus, a sample file) could not be read
    └── ActionError          an action (webhook, Triton control, backup) failed

Foreign exceptions are translated at the boundary with ``raise ... from exc`` so the cause is kept.
"""

from __future__ import annotations


class LifecycledError(Exception):
    """Base of every error lifecycled raises on purpose."""


class ConfigError(LifecycledError):
    """The configuration is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{len(self.problems)} problem(s):\n  " + "\n  ".join(self.problems))


class InputError(LifecycledError):
    """A user-supplied file or argument is malformed."""


class NotFoundError(LifecycledError):
    """A requested record does not exist."""


class TransitionError(LifecycledError):
    """A status change is not allowed by the lifecycle graph."""


class StoreError(LifecycledError):
    """The state store cannot be opened or used."""


class SourceError(LifecycledError):
    """A source could not be read; ``source`` names it."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        # a library's message may span lines (pyarrow's do): an error is one line
        super().__init__(f"{source}: {' '.join(message.split())}")


class ActionError(LifecycledError):
    """An action (webhook delivery, Triton control, backup) failed."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none): what a one-line
    error shows of a foreign exception."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
