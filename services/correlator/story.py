"""Attack stories: correlate one agent's signals across surfaces into one narrative.

Signals of the same Deployment closer together than the story gap join one story; a
story whose every signal follows a Deployment change is expected drift, not compromise.
Pure logic; `ocsf.py` renders the story for the SOC.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from runward.core import techniques
from runward.core.contracts import AttackStory, Signal, StoryStatus, Surface, Technique
from services.correlator.ocsf import detection_finding

# The brief's four detection surfaces: a story spanning several is far more likely an attack.
AI_SURFACES = frozenset({Surface.INPUT, Surface.TOOL, Surface.IDENTITY, Surface.MULTI_AGENT})


class StoryState(BaseModel):
    story_id: str | None = None
    version: int = 0
    signals: list[Signal] = Field(default_factory=list)


def correlate(state: StoryState | None, signal: Signal, gap: timedelta) -> tuple[StoryState, AttackStory]:
    state = (state or StoryState()).model_copy(deep=True)
    if state.story_id is None or not state.signals or signal.ts - state.signals[-1].ts > gap:
        state = StoryState(story_id=_story_id(signal))
    if any(s.signal_id == signal.signal_id for s in state.signals):
        return state, _story(state)  # redelivery: same story, same version
    state.signals = sorted([*state.signals, signal], key=lambda s: s.ts)
    state.version += 1
    return state, _story(state)


def _story_id(first: Signal) -> str:
    return "story-" + hashlib.sha1(f"{first.deployment}|{first.signal_id}".encode()).hexdigest()[:16]


def _story(state: StoryState) -> AttackStory:
    signals = state.signals
    surfaces = sorted({s.surface for s in signals}, key=lambda s: s.value)
    techs = _techniques(signals)
    correlated = all(s.deployment_correlated for s in signals)
    severity = max(s.severity for s in signals)
    if not correlated:
        # Each further surface the story spans makes a coincidence less likely.
        severity = min(5, severity + len(set(surfaces) & AI_SURFACES) - 1 if set(surfaces) & AI_SURFACES else severity)
    assert state.story_id is not None
    story = AttackStory(
        story_id=state.story_id,
        deployment=signals[0].deployment,
        version=state.version,
        first_seen=signals[0].ts,
        last_seen=signals[-1].ts,
        status=StoryStatus.EXPECTED_DRIFT if correlated else StoryStatus.POTENTIAL_COMPROMISE,
        severity=1 if correlated else severity,
        surfaces=surfaces,
        techniques=techs,
        narrative=[_line(s) for s in signals],
        signals=signals,
        ocsf={},
    )
    story.ocsf = detection_finding(story)
    return story


def _techniques(signals: list[Signal]) -> list[Technique]:
    found: dict[str, Technique] = {}
    for s in signals:
        for t in s.techniques:
            found.setdefault(t.uid, t)
    # A tool call followed by new egress in one story is exfiltration through the agent's tools.
    tool_at = min((s.ts for s in signals if s.surface in {Surface.TOOL, Surface.MULTI_AGENT}), default=None)
    if tool_at and any(
        s.surface is Surface.NETWORK and s.ts >= tool_at and not s.deployment_correlated for s in signals
    ):
        found.setdefault(techniques.EXFIL_VIA_TOOL.uid, techniques.EXFIL_VIA_TOOL)
    return sorted(found.values(), key=lambda t: t.uid)


def _line(signal: Signal) -> str:
    when: datetime = signal.ts
    ids = ", ".join(t.uid for t in signal.techniques)
    return f"{when.isoformat(timespec='seconds')} [{signal.surface.value}] {signal.title}" + (
        f" ({ids})" if ids else ""
    )
