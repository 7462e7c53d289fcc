"""The status machine and version arithmetic."""

from __future__ import annotations

import itertools

import pytest
from lifecycled.core.lifecycle import TRANSITIONS, check_transition, next_version, promotion_path
from lifecycled.domain import Status as S
from lifecycled.errors import InputError, TransitionError

ALLOWED = {
    (S.DEVELOPING, S.TESTING), (S.TESTING, S.DEVELOPING), (S.TESTING, S.STAGING),
    (S.STAGING, S.TESTING), (S.STAGING, S.PRODUCTION), (S.PRODUCTION, S.DEPRECATED),
    (S.DEPRECATED, S.PRODUCTION), (S.DEPRECATED, S.RETIRED), (S.FAILED, S.TESTING),
    (S.FAILED, S.RETIRED),
    *((s, S.FAILED) for s in (S.DEVELOPING, S.TESTING, S.STAGING, S.PRODUCTION, S.DEPRECATED)),
}


@pytest.mark.parametrize("move", sorted(ALLOWED))
def test_every_allowed_move_passes(move: tuple[S, S]) -> None:
    check_transition("m:1", *move)


@pytest.mark.parametrize(
    "move", sorted(set(itertools.product(S, S)) - ALLOWED)
)
def test_every_other_move_is_refused_with_a_clear_sentence(move: tuple[S, S]) -> None:
    with pytest.raises(TransitionError) as info:
        check_transition("m:1", *move)
    assert "m:1" in str(info.value)
    if move[0] != move[1]:
        assert f"from {move[0].value} to {move[1].value}" in str(info.value)


def test_the_table_is_exactly_the_documented_graph() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


def test_retired_is_final() -> None:
    assert TRANSITIONS[S.RETIRED] == frozenset()


@pytest.mark.parametrize(("given", "expected"), [
    ("3", "4"), ("9", "10"), ("1.2.0", "1.2.1"), ("0.9.9", "0.9.10"),
])
def test_next_version(given: str, expected: str) -> None:
    assert next_version(given) == expected


@pytest.mark.parametrize("bad", ["v1", "1.2", "latest", ""])
def test_next_version_refuses_unknown_schemes(bad: str) -> None:
    with pytest.raises(InputError):
        next_version(bad)


@pytest.mark.parametrize(("start", "path"), [
    (S.DEVELOPING, [S.TESTING, S.STAGING, S.PRODUCTION]),
    (S.TESTING, [S.STAGING, S.PRODUCTION]),
    (S.STAGING, [S.PRODUCTION]),
    (S.FAILED, [S.TESTING, S.STAGING, S.PRODUCTION]),
    (S.DEPRECATED, [S.PRODUCTION]),
    (S.PRODUCTION, []),
])
def test_promotion_follows_the_graph(start: S, path: list[S]) -> None:
    assert promotion_path(start, S.PRODUCTION) == path
    current = start
    for step in path:  # every step is an allowed move
        check_transition("m:1", current, step)
        current = step


def test_no_path_out_of_retired() -> None:
    with pytest.raises(TransitionError, match="no sequence of allowed moves"):
        promotion_path(S.RETIRED, S.PRODUCTION)
