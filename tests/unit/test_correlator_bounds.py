"""A story stays bounded however long its agent stays noisy, and keeps its facts over all signals.

services/correlator/story.py keeps the latest 20 signals and bounded facts; these tests check the
published record and the StoryBook value stay small for 5,000 signals, that what the story says
(count, surfaces, techniques, severity, behaviours) is over all of them, that linking is the same
as linking against every signal, and that StoryBook values written before the facts still load.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from runward.core.contracts import Signal, StoryStatus, Surface, Technique
from services.correlator.story import (
    KEPT_SIGNALS,
    MAX_BEHAVIOURS,
    StoryBook,
    accepted_behaviours,
    correlate,
    link,
    linked,
)

T0 = datetime(2026, 1, 9, 12, tzinfo=timezone.utc)
GAP = timedelta(minutes=30)
SURFACES = [Surface.PROCESS, Surface.NETWORK, Surface.FILE]


def sig(
    sid: str,
    at: timedelta,
    surface: Surface = Surface.PROCESS,
    severity: int = 2,
    tech: str | None = None,
    behaviour: str | None = None,
    pod: str | None = None,
    correlated: bool = False,
    **evidence: object,
) -> Signal:
    return Signal(
        signal_id=sid,
        deployment="agents/noisy",
        ts=T0 + at,
        surface=surface,
        title=f"{surface.value} {sid}",
        severity=severity,
        deployment_correlated=correlated,
        behaviour=behaviour,
        source_event=sid,
        techniques=[Technique(uid=tech, name=tech)] if tech else [],
        evidence={**({"pod": pod} if pod else {}), **evidence},
    )


def test_a_story_of_5000_signals_stays_small_and_tells_all_of_them() -> None:
    book: StoryBook | None = None
    # The first signal alone is the tool surface, the highest severity and an ATLAS technique.
    book, story = correlate(book, sig("s0", timedelta(0), Surface.TOOL, severity=4, tech="AML.T0053"), GAP)
    for i in range(1, 5000):
        signal = sig(
            f"s{i}",
            timedelta(seconds=i),
            SURFACES[i % 3],
            behaviour=f"exec:/usr/bin/tool-{i}",
            pod=f"noisy-{i % 7}",
            trace_id=f"{i:032x}",
        )
        book, story = correlate(book, signal, GAP)
    assert len(book.stories) == 1 and story.version == 5000 and story.signal_count == 5000
    assert [s.signal_id for s in story.signals] == [f"s{i}" for i in range(5000 - KEPT_SIGNALS, 5000)]
    assert story.narrative[0].startswith("… 4980 earlier signals since 2026-01-09T12:00:00")
    assert len(story.narrative) == KEPT_SIGNALS + 1
    assert story.first_seen == T0 and story.last_seen == T0 + timedelta(seconds=4999)
    assert set(story.surfaces) == {Surface.TOOL, *SURFACES}
    # The tool call before new egress (exfiltration through tools) is told although both fell out.
    assert {t.uid for t in story.techniques} == {"AML.T0053", "AML.T0086"}
    assert story.status is StoryStatus.POTENTIAL_COMPROMISE and story.severity == 4
    assert len(story.behaviours) == MAX_BEHAVIOURS and story.behaviours_truncated
    assert story.ocsf["count"] == 5000 and len(story.ocsf["evidences"]) == KEPT_SIGNALS
    record = len(story.model_dump_json().encode())
    value = len(book.model_dump_json().encode())
    print(f"published story {record} bytes, StoryBook value {value} bytes")
    assert record < 64 * 1024, record
    assert value < 128 * 1024, value


def test_acceptance_is_whole_for_a_story_longer_than_it_tells() -> None:
    book: StoryBook | None = None
    for i in range(60):
        surface = Surface.INPUT if i % 10 == 0 else Surface.NETWORK
        book, story = correlate(book, sig(f"s{i}", timedelta(seconds=i), surface, behaviour=f"dns:h{i}.example"), GAP)
    assert len(story.signals) == KEPT_SIGNALS and not story.behaviours_truncated
    # Every deviation of the 60 signals, none of the input findings.
    assert accepted_behaviours(story) == sorted(f"dns:h{i}.example" for i in range(60) if i % 10)


def test_redelivery_of_a_signal_no_longer_told_is_still_idempotent() -> None:
    book: StoryBook | None = None
    for i in range(50):
        book, story = correlate(book, sig(f"s{i}", timedelta(seconds=i)), GAP)
    book, again = correlate(book, sig("s3", timedelta(seconds=3)), GAP)
    assert again.version == story.version == 50 and again.signal_count == 50


def test_merging_stories_merges_their_facts() -> None:
    book: StoryBook | None = None
    for i in range(30):
        book, a = correlate(book, sig(f"a{i}", timedelta(seconds=i), tech="T1059", pod="p1"), GAP)
    for i in range(30):
        at = timedelta(hours=3, seconds=i)
        book, b = correlate(book, sig(f"b{i}", at, Surface.NETWORK, severity=3, pod="p2"), GAP)
    assert a.story_id != b.story_id
    book, stories = link(book, sig("bridge", timedelta(hours=1, minutes=30), Surface.FILE, pod="p1"), GAP)
    book, stories = link(book, sig("bridge2", timedelta(hours=2, minutes=20), Surface.FILE, pod="p2"), GAP)
    book, stories = link(book, sig("bridge3", timedelta(hours=1, minutes=55), Surface.FILE, pod="p1"), GAP)
    keeper, absorbed = stories
    assert keeper.story_id == a.story_id and absorbed.merged_into == a.story_id
    assert keeper.signal_count == 63 and keeper.first_seen == T0 and keeper.severity == 3
    assert {t.uid for t in keeper.techniques} == {"T1059"} and Surface.NETWORK in keeper.surfaces
    assert keeper.signals[-1].signal_id == "b29" and len(keeper.signals) == KEPT_SIGNALS
    # The absorbed story's signals are the keeper's now: redelivering one changes nothing.
    _, [again] = link(book, sig("b0", timedelta(hours=3), Surface.NETWORK, severity=3, pod="p2"), GAP)
    assert again.story_id == keeper.story_id and again.version == keeper.version


def _reference(signals: list[Signal]) -> list[list[str]]:
    """Stories as the correlator told them when it kept every signal: link against each one."""
    stories: list[list[Signal]] = []
    for signal in signals:
        joined = [st for st in stories if any(linked(signal, s, GAP) for s in st)]
        rest = [st for st in stories if st not in joined]
        merged = [signal, *(s for st in joined for s in st)]
        horizon = GAP * 16
        stories = [st for st in [*rest, merged] if signal.ts - max(s.ts for s in st) <= horizon]
    return sorted(sorted(s.signal_id for s in st) for st in stories)


def test_linking_from_bounded_facts_is_linking_against_every_signal() -> None:
    rng = random.Random(7)
    for trial in range(40):
        signals = [
            sig(
                f"t{trial}-{i}",
                timedelta(minutes=rng.uniform(0, 600)),
                rng.choice(SURFACES),
                pod=rng.choice(["p1", "p2", "p3", None]),
            )
            for i in range(rng.randint(5, 60))
        ]
        book: StoryBook | None = None
        for signal in signals:
            book, _ = link(book, signal, GAP)
        assert book is not None
        ours = sorted(sorted(s.signal_id for s in st.signals) for st in book.stories if st.signal_count <= 20)
        counts = sorted(st.signal_count for st in book.stories)
        reference = _reference(signals)
        assert counts == sorted(len(st) for st in reference), trial
        assert all(st in reference for st in ours), trial


def test_a_storybook_written_before_the_bounded_facts_loads() -> None:
    old = [
        sig("a", timedelta(0), Surface.INPUT, tech="AML.T0051", pod="bot-1"),
        sig("b", timedelta(minutes=35), Surface.TOOL, severity=4, pod="bot-1", behaviour="exec:/bin/sh"),
    ]
    value = {"stories": [{"story_id": "story-old", "version": 2, "signals": [s.model_dump(mode="json") for s in old]}]}
    book = StoryBook.model_validate(value)
    [state] = book.stories
    assert state.signal_count == 2 and state.first_seen == T0 and state.severity == 4
    assert {t.uid for t in state.techniques} == {"AML.T0051"} and state.behaviours == ["exec:/bin/sh"]
    # Linked through the pod, 35 minutes after the last: the old story grows.
    book, story = correlate(book, sig("c", timedelta(minutes=70), Surface.NETWORK, pod="bot-1"), GAP)
    assert story.story_id == "story-old" and story.version == 3 and story.signal_count == 3
    _, again = correlate(book, old[0], GAP)
    assert again.version == 3, "the old signals' ids are known: redelivery stays idempotent"


def test_large_signals_are_told_within_a_byte_budget_the_newest_always() -> None:
    from services.correlator.story import KEPT_BYTES

    book: StoryBook | None = None
    for i in range(40):
        book, story = correlate(book, sig(f"s{i}", timedelta(seconds=i), blob="x" * 30_000), GAP)
    assert story.signal_count == 40 and story.signals[-1].signal_id == "s39"
    assert 1 < len(story.signals) < KEPT_SIGNALS
    assert len(story.model_dump_json().encode()) < 4 * KEPT_BYTES
    _, big = correlate(book, sig("huge", timedelta(seconds=41), blob="x" * 300_000), GAP)
    assert [s.signal_id for s in big.signals] == ["huge"], "the newest signal is always told"
