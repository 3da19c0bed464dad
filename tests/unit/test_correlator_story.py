from __future__ import annotations

from datetime import datetime, timedelta, timezone

from runward.core.contracts import Signal, StoryStatus, Surface, Technique
from services.correlator.story import StoryBook, correlate

T0 = datetime(2026, 1, 9, 12, tzinfo=timezone.utc)
GAP = timedelta(minutes=30)


def sig(
    sid: str, at: timedelta, surface: Surface, severity: int = 3, correlated: bool = False, tech: str | None = None
) -> Signal:
    return Signal(
        signal_id=sid,
        deployment="agents/bot",
        ts=T0 + at,
        surface=surface,
        title=f"{surface.value} {sid}",
        severity=severity,
        deployment_correlated=correlated,
        source_event=sid,
        techniques=[Technique(uid=tech, name=tech)] if tech else [],
    )


def test_signals_across_surfaces_become_one_growing_story() -> None:
    state = None
    versions = []
    for s in [
        sig("a", timedelta(0), Surface.INPUT, tech="AML.T0051"),
        sig("b", timedelta(seconds=5), Surface.TOOL, tech="AML.T0053"),
        sig("c", timedelta(seconds=9), Surface.IDENTITY, severity=4),
        sig("d", timedelta(seconds=13), Surface.NETWORK, tech="T1071"),
    ]:
        state, story = correlate(state, s, GAP)
        versions.append((story.story_id, story.version))
    assert len({sid for sid, _ in versions}) == 1 and [v for _, v in versions] == [1, 2, 3, 4]
    assert story.status is StoryStatus.POTENTIAL_COMPROMISE
    assert story.severity == 5  # identity (4) + three AI surfaces
    assert {t.uid for t in story.techniques} == {"AML.T0051", "AML.T0053", "T1071", "AML.T0086"}
    assert story.ocsf["class_uid"] == 2004 and story.ocsf["type_uid"] == 200402
    assert len(story.narrative) == 4 and story.narrative[0].endswith("(AML.T0051)")


def test_a_quiet_gap_starts_a_new_story_and_redelivery_is_idempotent() -> None:
    state, first = correlate(None, sig("a", timedelta(0), Surface.TOOL), GAP)
    state, again = correlate(state, sig("a", timedelta(0), Surface.TOOL), GAP)
    assert again.version == first.version == 1
    _, later = correlate(state, sig("b", timedelta(hours=2), Surface.TOOL), GAP)
    assert later.story_id != first.story_id and later.version == 1
    assert later.ocsf["type_uid"] == 200401


def test_deployment_correlated_drift_is_tagged_not_escalated() -> None:
    state, story = correlate(None, sig("a", timedelta(0), Surface.NETWORK, 1, correlated=True), GAP)
    assert story.status is StoryStatus.EXPECTED_DRIFT and story.severity == 1
    _, story = correlate(state, sig("b", timedelta(seconds=3), Surface.TOOL), GAP)
    assert story.status is StoryStatus.POTENTIAL_COMPROMISE


def test_state_survives_serialisation() -> None:
    state, _ = correlate(None, sig("a", timedelta(0), Surface.TOOL), GAP)
    restored = StoryBook.model_validate(state.model_dump(mode="json"))
    _, story = correlate(restored, sig("b", timedelta(seconds=1), Surface.INPUT), GAP)
    assert story.version == 2


def _in_pod(s: Signal, pod: str) -> Signal:
    return s.model_copy(update={"evidence": {"pod": pod}})


def test_a_slow_attack_in_one_pod_is_one_story_in_any_arrival_order() -> None:
    # Steps 35 min apart (the gap is 30): linked through the pod they share, each link bounded by the gap.
    steps = [
        _in_pod(sig("a", timedelta(0), Surface.INPUT, tech="AML.T0051"), "bot-1"),
        _in_pod(sig("b", timedelta(minutes=35), Surface.TOOL), "bot-1"),
        _in_pod(sig("c", timedelta(minutes=70), Surface.PROCESS), "bot-1"),
        _in_pod(sig("d", timedelta(minutes=105), Surface.NETWORK), "bot-1"),
    ]
    for order in (steps, steps[::-1], [steps[2], steps[0], steps[3], steps[1]]):
        book: StoryBook | None = None
        for s in order:
            book, _ = correlate(book, s, GAP)
        assert book is not None
        live = [st for st in book.stories]
        assert len(live) == 1 and [s.signal_id for s in live[0].signals] == ["a", "b", "c", "d"]


def test_a_late_signal_far_in_event_time_does_not_join_by_arriving_next() -> None:
    book, first = correlate(None, sig("a", timedelta(hours=5), Surface.TOOL), GAP)
    # Delivered right after, but from hours earlier on another topic, sharing nothing: its own story.
    _, late = correlate(book, sig("b", timedelta(0), Surface.NETWORK), GAP)
    assert late.story_id != first.story_id and late.version == 1


def test_a_signal_bridging_two_stories_merges_them_and_the_absorbed_one_stops_holding() -> None:
    from services.correlator.story import link
    from services.enforcer.promotion_gate import holds

    book, first = correlate(None, _in_pod(sig("a", timedelta(0), Surface.TOOL), "bot-1"), GAP)
    book, second = correlate(book, _in_pod(sig("b", timedelta(hours=3), Surface.NETWORK), "bot-2"), GAP)
    assert first.story_id != second.story_id
    bridge = sig("c", timedelta(hours=1, minutes=30), Surface.PROCESS).model_copy(update={"evidence": {"pod": "bot-1"}})
    bridge2 = _in_pod(sig("d", timedelta(hours=2, minutes=45), Surface.PROCESS), "bot-2")
    book, stories = link(book, bridge, GAP)
    assert [s.story_id for s in stories] == [first.story_id]
    book, stories = link(book, bridge2, GAP)
    assert stories[0].story_id == second.story_id  # 75 min from c, sharing nothing: not linked
    _, stories = link(book, _in_pod(sig("e", timedelta(hours=2, minutes=20), Surface.FILE), "bot-1"), GAP)
    keeper, absorbed = stories
    assert keeper.story_id == first.story_id and absorbed.merged_into == first.story_id
    assert {s.signal_id for s in keeper.signals} == {"a", "b", "c", "d", "e"}
    assert holds(keeper) and not holds(absorbed) and absorbed.ocsf["status_id"] == 5


def test_linking_leaves_the_given_book_unchanged() -> None:
    # `link` copies only the stories it changes (services/correlator/story.py `_own`): a signal that
    # fails later in its record must not leave the table's book half changed.
    from services.correlator.story import link, link_drafts

    book, _ = correlate(None, _in_pod(sig("a", timedelta(0), Surface.TOOL), "bot-1"), GAP)
    book, _ = correlate(book, _in_pod(sig("b", timedelta(hours=3), Surface.NETWORK), "bot-2"), GAP)
    published = []
    for signal in [
        _in_pod(sig("c", timedelta(hours=1, minutes=30), Surface.PROCESS), "bot-1"),  # joins a's story
        _in_pod(sig("d", timedelta(hours=2, minutes=45), Surface.PROCESS), "bot-2"),  # joins b's story
        _in_pod(sig("e", timedelta(hours=2, minutes=20), Surface.FILE), "bot-1"),  # merges both
        sig("a", timedelta(0), Surface.TOOL),  # a redelivery
        sig("f", timedelta(hours=20), Surface.INPUT),  # a new story, past the others' horizon
    ]:
        before = book.model_dump()
        _, drafts = link_drafts(book, signal, GAP)  # the stage's way: told later, by the finishers
        told = [finish(draft) for draft, finish in drafts]
        after, stories = link(book, signal, GAP)
        assert book.model_dump() == before, signal.signal_id
        assert [s.model_dump() for s in told] == [s.model_dump() for s in stories]
        book, published = after, [*published, [s.version for s in stories]]
    assert published == [[2], [2], [3, 3], [3], [1]]
    assert [[s.signal_id for s in st.signals] for st in book.stories] == [["f"]]
