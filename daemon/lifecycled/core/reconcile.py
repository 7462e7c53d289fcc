"""Mismatches between the registry and what Triton serves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lifecycled.domain import ModelRef, Status

SERVING = ("ready",)


@dataclass(frozen=True)
class Mismatch:
    ref: ModelRef
    kind: str  # production_not_loaded, loaded_not_registered, retired_still_loaded
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"model": str(self.ref), "kind": self.kind, "detail": self.detail}


def find_mismatches(statuses: Mapping[ModelRef, Status],
                    states: Iterable[tuple[ModelRef, str, str]]) -> list[Mismatch]:
    """``states`` are (model version, endpoint, state) as last observed."""
    ready: dict[ModelRef, list[str]] = {}
    for ref, endpoint, state in states:
        if state in SERVING:
            ready.setdefault(ref, []).append(endpoint)
    found = []
    for ref, status in sorted(statuses.items()):
        if status == Status.PRODUCTION and ref not in ready:
            found.append(Mismatch(ref, "production_not_loaded",
                                  "in production but not ready on any Triton endpoint"))
        if status == Status.RETIRED and ref in ready:
            found.append(Mismatch(ref, "retired_still_loaded",
                                  f"retired but ready on {', '.join(sorted(ready[ref]))}"))
    for ref in sorted(set(ready) - set(statuses)):
        found.append(Mismatch(ref, "loaded_not_registered",
                              f"ready on {', '.join(sorted(ready[ref]))} but not registered"))
    return found
