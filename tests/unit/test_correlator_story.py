from __future__ import annotations

from datetime import datetime, timedelta, timezone

from runward.core.contracts import Signal, StoryStatus, Surface, Technique
from services.correlator.story import StoryState, correlate

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
    restored = StoryState.model_validate(state.model_dump(mode="json"))
    _, story = correlate(restored, sig("b", timedelta(seconds=1), Surface.INPUT), GAP)
    assert story.version == 2


def test_a_long_story_keeps_its_latest_signals_and_counts_all() -> None:
    from services.correlator.story import MAX_STORY_SIGNALS

    state = None
    first = sig("s0", timedelta(0), Surface.TOOL, tech="AML.T0053")
    state, story = correlate(state, first, GAP)
    for n in range(1, 500):
        state, story = correlate(state, sig(f"s{n}", timedelta(seconds=n), Surface.NETWORK, tech="T1071"), GAP)
    assert story.version == 500 and story.signal_count == 500 and story.ocsf["count"] == 500
    assert len(story.signals) == len(story.narrative) == MAX_STORY_SIGNALS
    assert [s.signal_id for s in story.signals] == [f"s{n}" for n in range(500 - MAX_STORY_SIGNALS, 500)]
    # What only the dropped first signal said still holds: the tool surface, its technique, exfiltration.
    assert story.first_seen == first.ts and Surface.TOOL in story.surfaces
    assert {t.uid for t in story.techniques} == {"AML.T0053", "T1071", "AML.T0086"}
    # A redelivered recent signal changes nothing.
    _, again = correlate(state, sig("s499", timedelta(seconds=499), Surface.NETWORK, tech="T1071"), GAP)
    assert again.version == 500
