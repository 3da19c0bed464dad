"""The harness finds records its consumer skipped (runward/core/stage.py _Positions)."""

from __future__ import annotations

from dataclasses import dataclass

from runward.core.stage import _Positions


@dataclass(frozen=True)
class Tp:
    topic: str
    partition: int


@dataclass
class Message:
    tp: Tp
    offset: int


@dataclass
class Event:
    message: Message


def events(tp: Tp, *offsets: int) -> list[Event]:
    return [Event(Message(tp, o)) for o in offsets]


A, B = Tp("runward.events.enriched", 0), Tp("runward.events.enriched", 1)


def test_a_hole_is_found_and_redeliveries_are_not_holes() -> None:
    positions = _Positions(lambda tp: None)
    assert positions.holes_in(events(A, 0, 1, 2, 3)) == []
    assert positions.holes_in(events(A, 2, 3, 4)) == []  # redelivered: handled again, no hole
    assert positions.holes_in([*events(A, 6, 7), *events(B, 0)]) == [(A, 5, 5)]
    assert positions.holes_in(events(A, 5, 6, 7, 8, 10)) == [(A, 9, 9)]  # the re-read, and a new hole
    assert positions.holes == 2


def test_the_first_record_after_an_assignment_is_checked_against_the_committed_offset() -> None:
    committed = {A: 19}
    positions = _Positions(committed.get)
    assert positions.holes_in(events(A, 20, 21)) == [(A, 19, 19)]
    positions.forget([A])
    committed[A] = 22
    assert positions.holes_in(events(A, 22)) == []
    assert positions.holes_in(events(B, 7)) == []  # never committed: nothing to compare with


def test_a_hole_is_read_again_once() -> None:
    positions = _Positions(lambda tp: None)
    assert positions.again(A, 5) and not positions.again(A, 5) and positions.again(A, 9)


def test_a_partition_never_committed_on_is_checked_from_the_log_start() -> None:
    positions = _Positions(lambda tp: None)
    assert positions.unknown(events(A, 1, 2)) == {A}
    positions.start_at(A, 0)
    assert positions.unknown(events(A, 1)) == set()
    assert positions.holes_in(events(A, 1, 2)) == [(A, 0, 0)]
