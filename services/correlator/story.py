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
from runward.core.contracts import (
    AttackStory,
    Resolution,
    Signal,
    StoryLifecycle,
    StoryStatus,
    Surface,
    Technique,
)
from services.correlator.ocsf import OCSF_VERSION, detection_finding

# The brief's four detection surfaces: a story spanning several is far more likely an attack.
AI_SURFACES = frozenset({Surface.INPUT, Surface.TOOL, Surface.IDENTITY, Surface.MULTI_AGENT})


class StoryState(BaseModel):
    story_id: str | None = None
    version: int = 0
    signals: list[Signal] = Field(default_factory=list)


class StoryBook(BaseModel):
    """One agent's recent stories (the correlator's table value, keyed by Deployment)."""

    stories: list[StoryState] = Field(default_factory=list)


# A shared entity beyond the Deployment (the same pod, ServiceAccount, destination, tool, trace)
# links two signals this many story gaps apart: a slow attack keeps to one pod or one destination.
ENTITY_LINK_GAPS = 8
# Stories whose last signal is this many entity links behind the newest are no longer linkable.
HORIZON_LINKS = 2


def entities(signal: Signal) -> frozenset[str]:
    """What a signal names besides its Deployment, each as `kind:value`."""
    found: set[str] = set()
    evidence = signal.evidence
    for key in ("pod", "service_account", "trace_id"):
        if evidence.get(key):
            found.add(f"{key}:{evidence[key]}")
    detail = evidence.get("detail") or {}
    if isinstance(detail, dict):
        if detail.get("tool_call_id"):
            found.add(f"tool_session:{detail['tool_call_id']}")
        for key in ("dns_name", "address"):
            if detail.get(key):
                found.add(f"destination:{detail[key]}")
    behaviour = signal.behaviour
    host = getattr(behaviour, "host", None) or getattr(behaviour, "name", None)
    if host and getattr(behaviour, "kind", None) in {"egress", "dns"}:
        found.add(f"destination:{host}")
    return frozenset(found)


def linked(a: Signal, b: Signal, gap: timedelta) -> bool:
    """Two signals of one agent belong together: close in event time, or sharing an entity and
    within the longer entity link. Symmetric and by event time, so arrival order cannot matter."""
    apart = abs(a.ts - b.ts)
    if apart <= gap:
        return True
    return apart <= gap * ENTITY_LINK_GAPS and bool(entities(a) & entities(b))


def link(
    book: StoryBook | None, signal: Signal, gap: timedelta, cluster: str | None = None
) -> tuple[StoryBook, list[AttackStory]]:
    """Add a signal to the agent's stories: it joins every story it links to (each link bounded
    by the gap, not the whole story), merging them; otherwise it starts one.

    Returns the stories to publish: first the signal's, then any it absorbed (marked merged, so
    they stop holding the promotion gate). A merged story keeps the id of the earliest story."""
    book = _own(book or StoryBook())
    for state in book.stories:
        if any(s.signal_id == signal.signal_id for s in state.signals):
            return book, [_story(state, cluster)]  # redelivery: same story, same version
    joined = [st for st in book.stories if any(linked(signal, s, gap) for s in st.signals)]
    rest = [st for st in book.stories if st not in joined]
    if not joined:
        state = StoryState(story_id=_story_id(signal), signals=[signal], version=1)
        book.stories = _recent([*rest, state], signal, gap)
        return book, [_story(state, cluster)]
    joined.sort(key=lambda st: st.signals[0].ts)
    keeper, absorbed = joined[0], joined[1:]
    keeper.signals = sorted(
        [*keeper.signals, signal, *(s for st in absorbed for s in st.signals)], key=lambda s: (s.ts, s.signal_id)
    )
    keeper.version += 1
    merged = []
    for st in absorbed:
        st.version += 1
        story = _story(st, cluster)
        story.merged_into = keeper.story_id
        story.ocsf = detection_finding(story)
        merged.append(story)
    book.stories = _recent([*rest, keeper], signal, gap)
    return book, [_story(keeper, cluster), *merged]


def _own(book: StoryBook) -> StoryBook:
    """A copy of `book` that `link` may change while the caller's stays as it was: `link` replaces
    a story's signal list and bumps its version, never changes a signal, so the stories are
    copied and their signals shared (a deep copy per signal grew with every story's length).
    tests/unit/test_correlator_story.py checks that linking leaves the given book unchanged."""
    return book.model_copy(update={"stories": [state.model_copy() for state in book.stories]})


def _recent(stories: list[StoryState], newest: Signal, gap: timedelta) -> list[StoryState]:
    horizon = gap * ENTITY_LINK_GAPS * HORIZON_LINKS
    return [st for st in stories if newest.ts - st.signals[-1].ts <= horizon]


def correlate(
    state: StoryBook | None, signal: Signal, gap: timedelta, cluster: str | None = None
) -> tuple[StoryBook, AttackStory]:
    """The story a signal is in, after `link`."""
    book, stories = link(state, signal, gap, cluster)
    return book, stories[0]


def _story_id(first: Signal) -> str:
    return "story-" + hashlib.sha1(f"{first.deployment}|{first.signal_id}".encode()).hexdigest()[:16]


def _story(state: StoryState, cluster: str | None = None) -> AttackStory:
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
        related_deployments=related_deployments(signals),
        cluster=cluster,
    )
    story.ocsf = detection_finding(story)
    return story


def kafka_headers(story: AttackStory) -> tuple[tuple[str, str], ...]:
    """Headers of the story's record on runward.attack-stories: a SIEM routes on the schema and
    keeps the newest version of each story id without decoding the value."""
    return (
        ("schema", f"runward.attack-story/v{story.schema_version}"),
        ("ocsf", f"{OCSF_VERSION}/detection_finding/2004"),
        ("story_id", story.story_id),
        ("version", str(story.version)),
        ("deployment", story.deployment),
        ("status", str(story.status)),
    )


def related_deployments(signals: list[Signal]) -> list[str]:
    """The other Deployments a story spans: the caller named by a multi-agent signal (an injected
    hand-off in one trace) or by a new agent edge after the window."""
    found: set[str] = set()
    for s in signals:
        caller = s.evidence.get("caller_agent") or getattr(s.behaviour, "caller", None)
        if isinstance(caller, str) and caller != s.deployment:
            found.add(caller)
    return sorted(found)


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


# --- lifecycle: the SOC's work on a story -----------------------------------------------------

# action -> the lifecycles it may start from. Reopening is also the correlator's, when new linked
# signals join a resolved story (the store records it).
TRANSITIONS: dict[str, tuple[frozenset[StoryLifecycle], StoryLifecycle]] = {
    "acknowledge": (frozenset({StoryLifecycle.OPEN}), StoryLifecycle.ACKNOWLEDGED),
    "resolve": (frozenset({StoryLifecycle.OPEN, StoryLifecycle.ACKNOWLEDGED}), StoryLifecycle.RESOLVED),
    "reopen": (frozenset({StoryLifecycle.RESOLVED}), StoryLifecycle.OPEN),
}


class LifecycleRefused(ValueError):
    """The action does not apply to the story as it is; the message says why."""


def transition(story: AttackStory, action: str, resolution: Resolution | None = None) -> AttackStory:
    """The story after an approver's action, its OCSF status re-rendered; raises LifecycleRefused."""
    if action not in TRANSITIONS:
        raise LifecycleRefused(f"unknown story action {action!r}; one of {', '.join(TRANSITIONS)}")
    sources, target = TRANSITIONS[action]
    if story.lifecycle not in sources:
        raise LifecycleRefused(
            f"story {story.story_id} is {story.lifecycle.value}: it cannot be {action}d "
            f"(only from {', '.join(sorted(s.value for s in sources))})"
        )
    if (action == "resolve") != (resolution is not None):
        raise LifecycleRefused("resolve needs a resolution (true_positive, false_positive, benign); other actions none")
    updated = story.model_copy(update={"lifecycle": target, "resolution": resolution})
    updated.ocsf = detection_finding(updated)
    return updated


def accepted_behaviours(story: AttackStory) -> list[str]:
    """What a false-positive acceptance would add to the baseline: the story's deviations
    (input findings are not behaviours of the agent and are never accepted)."""
    return sorted(
        {s.behaviour.key for s in story.signals if s.behaviour is not None and s.surface is not Surface.INPUT}
    )
