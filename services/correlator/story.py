"""Attack stories: correlate one agent's signals across surfaces into one narrative.

Signals of the same Deployment closer together than the story gap join one story; a
story whose every signal follows a Deployment change is expected drift, not compromise.
Pure logic; `ocsf.py` renders the story for the SOC.
"""

from __future__ import annotations

import bisect
import hashlib
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from runward.core import techniques
from runward.core.contracts import AttackStory, Signal, StoryStatus, Surface, Technique
from services.correlator.ocsf import detection_finding

# The brief's four detection surfaces: a story spanning several is far more likely an attack.
AI_SURFACES = frozenset({Surface.INPUT, Surface.TOOL, Surface.IDENTITY, Surface.MULTI_AGENT})


# Signals a story keeps (the latest): a story can grow for as long as an agent misbehaves, and
# re-rendering and re-storing every signal it ever had made each signal cost the story's length.
# What the story says about all of them (count, surfaces, techniques, severity) is kept aside.
MAX_STORY_SIGNALS = 20


class StoryState(BaseModel):
    story_id: str | None = None
    version: int = 0
    signals: list[Signal] = Field(default_factory=list)  # the latest MAX_STORY_SIGNALS, by time
    signal_count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    severity: int = 1
    surfaces: list[Surface] = Field(default_factory=list)
    techniques: list[Technique] = Field(default_factory=list)
    all_correlated: bool = True
    # When the first tool call and the latest uncorrelated new egress happened (the exfiltration rule).
    first_tool_at: datetime | None = None
    last_egress_at: datetime | None = None


def correlate(state: StoryState | None, signal: Signal, gap: timedelta) -> tuple[StoryState, AttackStory]:
    state = (state or StoryState()).model_copy()
    if state.story_id is None or state.last_seen is None or signal.ts - state.last_seen > gap:
        state = StoryState(story_id=_story_id(signal))
    if any(s.signal_id == signal.signal_id for s in state.signals):
        return state, _story(state)  # redelivery: same story, same version
    _add(state, signal)
    state.version += 1
    return state, _story(state)


def _add(state: StoryState, signal: Signal) -> None:
    kept = [*state.signals]
    bisect.insort(kept, signal, key=lambda s: s.ts)
    state.signals = kept[-MAX_STORY_SIGNALS:]
    state.signal_count += 1
    state.first_seen = min(state.first_seen or signal.ts, signal.ts)
    state.last_seen = max(state.last_seen or signal.ts, signal.ts)
    state.severity = max(state.severity, signal.severity)
    if signal.surface not in state.surfaces:
        state.surfaces = sorted([*state.surfaces, signal.surface], key=lambda s: s.value)
    known = {t.uid for t in state.techniques}
    new = [t for t in signal.techniques if t.uid not in known]
    if new:
        state.techniques = [*state.techniques, *new]
    state.all_correlated = state.all_correlated and signal.deployment_correlated
    if signal.surface in {Surface.TOOL, Surface.MULTI_AGENT}:
        state.first_tool_at = min(state.first_tool_at or signal.ts, signal.ts)
    if signal.surface is Surface.NETWORK and not signal.deployment_correlated:
        state.last_egress_at = max(state.last_egress_at or signal.ts, signal.ts)


def _story_id(first: Signal) -> str:
    return "story-" + hashlib.sha1(f"{first.deployment}|{first.signal_id}".encode()).hexdigest()[:16]


def _story(state: StoryState) -> AttackStory:
    signals = state.signals
    surfaces = state.surfaces
    techs = _techniques(state)
    correlated = state.all_correlated
    severity = state.severity
    if not correlated:
        # Each further surface the story spans makes a coincidence less likely.
        severity = min(5, severity + len(set(surfaces) & AI_SURFACES) - 1 if set(surfaces) & AI_SURFACES else severity)
    assert state.story_id is not None and state.first_seen is not None and state.last_seen is not None
    story = AttackStory(
        story_id=state.story_id,
        deployment=signals[0].deployment,
        version=state.version,
        first_seen=state.first_seen,
        last_seen=state.last_seen,
        status=StoryStatus.EXPECTED_DRIFT if correlated else StoryStatus.POTENTIAL_COMPROMISE,
        severity=1 if correlated else severity,
        surfaces=surfaces,
        techniques=techs,
        narrative=[_line(s) for s in signals],
        signals=signals,
        signal_count=state.signal_count,
        ocsf={},
    )
    story.ocsf = detection_finding(story)
    return story


def _techniques(state: StoryState) -> list[Technique]:
    found = {t.uid: t for t in state.techniques}
    # A tool call followed by new egress in one story is exfiltration through the agent's tools.
    if state.first_tool_at and state.last_egress_at and state.last_egress_at >= state.first_tool_at:
        found.setdefault(techniques.EXFIL_VIA_TOOL.uid, techniques.EXFIL_VIA_TOOL)
    return sorted(found.values(), key=lambda t: t.uid)


def _line(signal: Signal) -> str:
    when: datetime = signal.ts
    ids = ", ".join(t.uid for t in signal.techniques)
    return f"{when.isoformat(timespec='seconds')} [{signal.surface.value}] {signal.title}" + (
        f" ({ids})" if ids else ""
    )
