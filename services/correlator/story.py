"""Attack stories: correlate one agent's signals across surfaces into one narrative.

Signals of the same Deployment closer together than the story gap join one story; a
story whose every signal follows a Deployment change is expected drift, not compromise.
Pure logic; `ocsf.py` renders the story for the SOC.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import operator
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter, model_validator

from runward.core import techniques
from runward.core.contracts import (
    AgentEdge,
    AttackStory,
    DeploymentId,
    Dns,
    Egress,
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


# What a story keeps. A noisy agent's story grows for as long as it stays noisy: the story (its
# record, the StoryBook changelog value, the work per signal) must not, or past the 1 MB record
# limit every later signal of the agent is dead-lettered and the SOC loses the agent. So a story
# keeps its latest signals to tell, and facts over all of them (counts, surfaces, techniques,
# severity, behaviours, the linking index) instead of the signals themselves.
KEPT_SIGNALS = 20  # the contract's number: AttackStory.signals are the latest 20 by event time
# ... and at most this much of them (encoded), the newest always: a story tells each signal about three
# times (signal, narrative, OCSF evidence), and 20 large signals must not push it past the record limit.
KEPT_BYTES = 128 * 1024
MAX_BEHAVIOURS = 500  # distinct behaviour keys a false-positive acceptance adds; more is noted
MAX_SPANS = 128  # time clusters of the story's signals (the time link); the oldest are dropped
MAX_ENTITIES = 256  # entities of the entity link, each with its latest clusters; least recent dropped
MAX_ENTITY_SPANS = 4
ENTITY_SLACK = 64  # entities beyond MAX_ENTITIES before the least recent are dropped
MAX_SEEN_IDS = 512  # signal ids (hashed) of the latest arrivals: redelivery within these is idempotent
MAX_RELATED = 64

Span = tuple[datetime, datetime]


class StoryState(BaseModel):
    """One story as the correlator keeps it: its latest signals and bounded facts over all of them.

    The time and entity links are exact while the caps hold: `spans` are the clusters of the
    story's signal times whose neighbours are at most one gap apart (a time is within a gap of
    some signal exactly when it is within a gap of a cluster), `entity_spans` the same per shared
    entity at the entity link. States written before these facts (signals only) are rebuilt from
    their signals on load."""

    story_id: str | None = None
    version: int = 0
    signals: list[Signal] = Field(default_factory=list, description="the latest KEPT_SIGNALS by event time")
    signal_count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    surfaces: list[Surface] = Field(default_factory=list)
    techniques: list[Technique] = Field(default_factory=list)
    severity: int = 1
    correlated: bool = True
    tool_at: datetime | None = Field(default=None, description="the earliest tool or multi-agent signal")
    network_at: datetime | None = Field(default=None, description="the latest uncorrelated network signal")
    behaviours: list[str] = Field(default_factory=list)
    behaviours_truncated: bool = False
    related: list[str] = Field(default_factory=list)
    spans: list[Span] = Field(default_factory=list)
    entity_spans: dict[str, list[Span]] = Field(default_factory=dict)
    seen_ids: list[str] = Field(default_factory=list)
    sizes: dict[str, int] = Field(default_factory=dict, description="encoded bytes of each kept signal, by id")

    @model_validator(mode="after")
    def _from_signals(self) -> StoryState:
        """A StoryBook value from before the bounded facts (signals only): fold them, clustered at LEGACY_GAP."""
        if self.signals and self.signal_count == 0:
            rebuilt = StoryState(story_id=self.story_id, version=self.version)
            for signal in sorted(self.signals, key=_order):
                rebuilt = _add(rebuilt, _signal_facts(signal, entities(signal)), LEGACY_GAP)
            return rebuilt
        return self


class StoryBook(BaseModel):
    """One agent's recent stories (the correlator's table value, keyed by Deployment)."""

    stories: list[StoryState] = Field(default_factory=list)


# A shared entity beyond the Deployment (the same pod, ServiceAccount, destination, tool, trace)
# links two signals this many story gaps apart: a slow attack keeps to one pod or one destination.
ENTITY_LINK_GAPS = 8
# Stories whose last signal is this many entity links behind the newest are no longer linkable.
HORIZON_LINKS = 2
# The gap an old-format state's clusters are built with (the default RUNWARD_STORY_GAP_S); the
# clusters only decide which signals link, and the next signals re-cluster at the configured gap.
LEGACY_GAP = timedelta(minutes=30)


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
    # isinstance, not getattr: a pydantic model's missing attribute raises in its __getattr__, per signal.
    behaviour = signal.behaviour
    if isinstance(behaviour, Egress):
        found.add(f"destination:{behaviour.host}")
    elif isinstance(behaviour, Dns):
        found.add(f"destination:{behaviour.name}")
    return frozenset(found)


def linked(a: Signal, b: Signal, gap: timedelta) -> bool:
    """Two signals of one agent belong together: close in event time, or sharing an entity and
    within the longer entity link. Symmetric and by event time, so arrival order cannot matter."""
    apart = abs(a.ts - b.ts)
    if apart <= gap:
        return True
    return apart <= gap * ENTITY_LINK_GAPS and bool(entities(a) & entities(b))


def _near(spans: list[Span], at: datetime, reach: timedelta) -> bool:
    return any(lo - reach <= at <= hi + reach for lo, hi in spans)


def joins(state: StoryState, signal: Signal, named: frozenset[str], gap: timedelta) -> bool:
    """`linked` to any of the story's signals, answered from its clusters (`named`: the signal's entities)."""
    if _near(state.spans, signal.ts, gap):
        return True
    reach = gap * ENTITY_LINK_GAPS
    return any(_near(state.entity_spans.get(e, []), signal.ts, reach) for e in named)


def _clustered(spans: list[Span], added: list[Span], within: timedelta, cap: int) -> list[Span]:
    """`spans` with `added`, neighbours at most `within` apart merged; the latest `cap` kept."""
    merged: list[Span] = []
    for lo, hi in sorted([*spans, *added]):
        if merged and lo - merged[-1][1] <= within:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged[-cap:]


def _entity_spans(
    current: dict[str, list[Span]], added: dict[str, list[Span]], within: timedelta
) -> dict[str, list[Span]]:
    result = dict(current)
    for entity, spans in added.items():
        result[entity] = _clustered(result.get(entity, []), spans, within, MAX_ENTITY_SPANS)
    if len(result) > MAX_ENTITIES + ENTITY_SLACK:
        # The entities named least recently go first: a slow attack keeps naming its pod. Trimmed
        # in steps, not per signal: per-request entities (trace, tool call) arrive with every one.
        keep = sorted(result, key=lambda e: result[e][-1][1], reverse=True)[:MAX_ENTITIES]
        result = {e: result[e] for e in keep}
    return result


# A signal's place in a story: (event time, id). attrgetter, not a Python function: it is the sort
# key of every signal a story keeps, for every signal that joins it.
_order: Callable[[Signal], tuple[datetime, str]] = operator.attrgetter("ts", "signal_id")


def _seen_id(signal_id: str) -> str:
    return hashlib.blake2b(signal_id.encode(), digest_size=8).hexdigest()


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


# States are made from trusted values as copies of an empty one: `model_construct` walks every
# field and its default on each call (a third of the correlator's CPU per signal). Every list and
# dict field is given, so no state shares the empty one's containers.
_EMPTY_STATE = StoryState()


_DEPLOYMENT_ID: TypeAdapter[str] = TypeAdapter(DeploymentId)


def _state(**facts: Any) -> StoryState:
    return _EMPTY_STATE.model_copy(update=facts)


def _signal_facts(signal: Signal, named: frozenset[str], size: int | None = None) -> StoryState:
    """A one-signal story's facts: what `_merge` folds into a story when the signal joins it
    (`size`: the signal's encoded size, when known)."""
    at = signal.ts
    behaviour = signal.behaviour.key if signal.behaviour is not None and signal.surface is not Surface.INPUT else None
    edge = signal.behaviour
    caller = signal.evidence.get("caller_agent") or (edge.caller if isinstance(edge, AgentEdge) else None)
    related = [caller] if isinstance(caller, str) and caller != signal.deployment else []
    if related:
        # A story names it among its Deployments, which it must be: checked now, as telling the
        # story would, so a signal no story can tell fails with its own record (`link_drafts`
        # tells stories after the batch) and leaves no state behind.
        _DEPLOYMENT_ID.validate_python(caller)
    network = signal.surface is Surface.NETWORK and not signal.deployment_correlated
    return _state(
        signals=[signal],
        sizes={signal.signal_id: len(signal.model_dump_json()) if size is None else size},
        signal_count=1,
        first_seen=at,
        last_seen=at,
        surfaces=[signal.surface],
        techniques=list({t.uid: t for t in signal.techniques}.values()),
        severity=signal.severity,
        correlated=signal.deployment_correlated,
        tool_at=at if signal.surface in {Surface.TOOL, Surface.MULTI_AGENT} else None,
        network_at=at if network else None,
        behaviours=[behaviour] if behaviour else [],
        behaviours_truncated=False,
        related=related,
        spans=[(at, at)],
        entity_spans={e: [(at, at)] for e in named},
        seen_ids=[_seen_id(signal.signal_id)],
    )


def _kept(parts: list[StoryState]) -> tuple[list[Signal], dict[str, int]]:
    """The latest signals of `parts` within KEPT_SIGNALS and KEPT_BYTES (the newest always), with their sizes."""
    keeper, *others = parts
    joining = others[0].signals[0] if len(others) == 1 and len(others[0].signals) == 1 else None
    if joining is not None and joining.signal_id not in [s.signal_id for s in keeper.signals]:
        # One new signal (nearly every call): inserted into the keeper's signals, which are sorted
        # (this function sorts them), not all of them re-sorted.
        latest = list(keeper.signals)
        bisect.insort(latest, joining, key=_order)
        latest = latest[-KEPT_SIGNALS:]
        known = {**keeper.sizes, **others[0].sizes}
    else:
        latest = sorted({s.signal_id: s for p in parts for s in p.signals}.values(), key=_order)[-KEPT_SIGNALS:]
        known = {i: n for p in parts for i, n in p.sizes.items()}
    kept: list[Signal] = []
    sizes: dict[str, int] = {}
    total = 0
    for signal in reversed(latest):
        size = known.get(signal.signal_id) or len(signal.model_dump_json())
        total += size
        if kept and total > KEPT_BYTES:
            break
        kept.append(signal)
        sizes[signal.signal_id] = size
    return kept[::-1], sizes


def _with(kept: list[str], added: Iterable[str]) -> list[str]:
    """sorted(set(kept) | set(added)) for a sorted `kept` without duplicates, as every state's
    behaviours are (`_merge` makes them so): the new ones inserted, not the whole list re-sorted
    for every signal (the given list is left as it was)."""
    result = kept
    for item in added:
        at = bisect.bisect_left(result, item)
        if at == len(result) or result[at] != item:
            if result is kept:
                result = list(kept)
            result.insert(at, item)
    return result


def _merge(keeper: StoryState, others: list[StoryState], gap: timedelta) -> StoryState:
    """`keeper` with the facts of `others` folded in, as a new state (the given ones unchanged)."""
    parts = [keeper, *others]
    signals, sizes = _kept(parts)
    behaviours = _with(keeper.behaviours, (b for p in others for b in p.behaviours))
    techs = {t.uid: t for p in reversed(parts) for t in p.techniques}
    entity_spans = keeper.entity_spans
    for other in others:
        entity_spans = _entity_spans(entity_spans, other.entity_spans, gap * ENTITY_LINK_GAPS)
    return _state(
        story_id=keeper.story_id,
        version=keeper.version,
        signals=signals,
        sizes=sizes,
        signal_count=sum(p.signal_count for p in parts),
        first_seen=min(p.first_seen for p in parts if p.first_seen is not None),
        last_seen=max(p.last_seen for p in parts if p.last_seen is not None),
        surfaces=sorted({s for p in parts for s in p.surfaces}),  # a StrEnum: in the order of its values
        techniques=sorted(techs.values(), key=lambda t: t.uid),
        severity=max(p.severity for p in parts),
        correlated=all(p.correlated for p in parts),
        tool_at=min((p.tool_at for p in parts if p.tool_at is not None), default=None),
        network_at=max((p.network_at for p in parts if p.network_at is not None), default=None),
        behaviours=behaviours[:MAX_BEHAVIOURS],
        behaviours_truncated=any(p.behaviours_truncated for p in parts) or len(behaviours) > MAX_BEHAVIOURS,
        related=sorted({d for p in parts for d in p.related})[:MAX_RELATED],
        spans=_clustered(keeper.spans, [s for p in others for s in p.spans], gap, MAX_SPANS),
        entity_spans=entity_spans,
        seen_ids=list(itertools.chain.from_iterable(p.seen_ids for p in parts))[-MAX_SEEN_IDS:],
    )


def _add(state: StoryState, facts: StoryState, gap: timedelta) -> StoryState:
    """`state` with a signal's `_signal_facts` (a new state, which may be `facts` itself)."""
    if state.signal_count == 0:
        facts.story_id, facts.version = state.story_id, state.version
        return facts
    return _merge(state, [facts], gap)


def link(
    book: StoryBook | None, signal: Signal, gap: timedelta, cluster: str | None = None
) -> tuple[StoryBook, list[AttackStory]]:
    """Add a signal to the agent's stories: it joins every story it links to (each link bounded
    by the gap, not the whole story), merging them; otherwise it starts one.

    Returns the stories to publish, rendered: first the signal's, then any it absorbed (marked
    merged, so they stop holding the promotion gate). A merged story keeps the id of the earliest
    story. Redelivery of one of a story's latest MAX_SEEN_IDS signals returns the story unchanged."""
    book, told = _link(book or StoryBook(), signal, gap, None)
    return book, [rendered(_story(state, cluster, merged_into)) for state, merged_into in told]


Draft = tuple[AttackStory, Callable[[AttackStory], AttackStory]]


def link_drafts(
    book: StoryBook | None, signal: Signal, gap: timedelta, cluster: str | None = None, size: int | None = None
) -> tuple[StoryBook, list[Draft]]:
    """`link` for the stage, which publishes and stores only the newest version of a story per
    batch: each story as a draft (its id, version, Deployment and status: what the harness and the
    record headers need) and the finisher that tells and renders it in full (`Output.finish`), the
    same story `link` returns. Telling a story (its narrative, the AttackStory and its OCSF) is
    most of the work per signal, so it is done once per batch, not for every signal; what could
    make a story invalid is checked here, with the signal (`_signal_facts`).
    `size`: the signal's encoded size, when the caller has it."""
    book, told = _link(book or StoryBook(), signal, gap, size)
    return book, [
        (_draft(state, merged_into), functools.partial(_finished, state, cluster, merged_into))
        for state, merged_into in told
    ]


def rendered(story: AttackStory) -> AttackStory:
    """The story with its OCSF Detection Finding rendered (what the SOC's topic and the store carry)."""
    return story.model_copy(update={"ocsf": detection_finding(story)})


def _finished(state: StoryState, cluster: str | None, merged_into: str | None, draft: AttackStory) -> AttackStory:
    return rendered(_story(state, cluster, merged_into))


# A story to publish: its state, and the story that absorbed it (None unless merged).
Told = tuple[StoryState, str | None]


def _link(book: StoryBook, signal: Signal, gap: timedelta, size: int | None) -> tuple[StoryBook, list[Told]]:
    seen = _seen_id(signal.signal_id)
    for state in book.stories:
        if seen in state.seen_ids:
            return book, [(state, None)]  # redelivery: same story, same version
    named = entities(signal)
    joined = [st for st in book.stories if joins(st, signal, named, gap)]
    # By identity: `not in` would compare the other stories field by field with each joined one.
    rest = [st for st in book.stories if not any(st is j for j in joined)]
    facts = _signal_facts(signal, named, size)
    if not joined:
        state = _add(StoryState(story_id=_story_id(signal), version=1), facts, gap)
        return StoryBook(stories=_recent([*rest, state], signal, gap)), [(state, None)]
    joined.sort(key=lambda st: st.first_seen or signal.ts)
    first, absorbed = joined[0], joined[1:]
    keeper = _merge(first, [facts, *absorbed], gap)
    keeper.version += 1
    merged: list[Told] = [(st.model_copy(update={"version": st.version + 1}), keeper.story_id) for st in absorbed]
    # A new book and new states: the caller's book stays as it was (a signal that fails later in
    # its record must not leave the table's book half changed; tests/unit/test_correlator_story.py).
    return StoryBook(stories=_recent([*rest, keeper], signal, gap)), [(keeper, None), *merged]


def _recent(stories: list[StoryState], newest: Signal, gap: timedelta) -> list[StoryState]:
    horizon = gap * ENTITY_LINK_GAPS * HORIZON_LINKS
    return [st for st in stories if st.last_seen is not None and newest.ts - st.last_seen <= horizon]


def correlate(
    state: StoryBook | None, signal: Signal, gap: timedelta, cluster: str | None = None
) -> tuple[StoryBook, AttackStory]:
    """The story a signal is in, after `link`."""
    book, stories = link(state, signal, gap, cluster)
    return book, stories[0]


def _story_id(first: Signal) -> str:
    return "story-" + hashlib.sha1(f"{first.deployment}|{first.signal_id}".encode()).hexdigest()[:16]


def _status(state: StoryState) -> StoryStatus:
    return StoryStatus.EXPECTED_DRIFT if state.correlated else StoryStatus.POTENTIAL_COMPROMISE


def _draft(state: StoryState, merged_into: str | None) -> AttackStory:
    """What `_story` would tell, without the telling: the fields the harness (story id, version)
    and `kafka_headers` read. Not validated and not whole: only `_finished` makes a record of it."""
    assert state.story_id is not None
    return _DRAFT.model_copy(
        update={
            "story_id": state.story_id,
            "deployment": state.signals[-1].deployment,
            "version": state.version,
            "status": _status(state),
            "merged_into": merged_into,
            "behaviours": state.behaviours,
            "related_deployments": state.related,
        }
    )


# Unvalidated and without the told fields (severity, signals, narrative, OCSF ...): reading one
# of a draft raises rather than publishing a placeholder. Drafts are copies of it: see _EMPTY_STATE.
_DRAFT = AttackStory.model_construct()  # type: ignore[call-arg]


def _story(state: StoryState, cluster: str | None = None, merged_into: str | None = None) -> AttackStory:
    """The published story: its latest signals told, everything else from the facts over all of
    them (so techniques, surfaces and severity do not change as older signals fall out)."""
    signals = state.signals
    surfaces = state.surfaces
    correlated = state.correlated
    severity = state.severity
    spanned = set(surfaces) & AI_SURFACES
    if not correlated and spanned:
        # Each further surface the story spans makes a coincidence less likely.
        severity = min(5, severity + len(spanned) - 1)
    techs = {t.uid: t for t in state.techniques}
    # A tool call followed by new egress in one story is exfiltration through the agent's tools.
    if state.tool_at is not None and state.network_at is not None and state.network_at >= state.tool_at:
        techs.setdefault(techniques.EXFIL_VIA_TOOL.uid, techniques.EXFIL_VIA_TOOL)
    earlier = state.signal_count - len(signals)
    assert state.story_id is not None and state.first_seen is not None and state.last_seen is not None
    narrative = [_line(s) for s in signals]
    if earlier > 0:
        since = state.first_seen.isoformat(timespec="seconds")
        narrative.insert(0, f"… {earlier} earlier signals since {since} (the latest {len(signals)} follow)")
    story = AttackStory(
        story_id=state.story_id,
        deployment=signals[-1].deployment,
        version=state.version,
        first_seen=state.first_seen,
        last_seen=state.last_seen,
        status=_status(state),
        severity=1 if correlated else severity,
        surfaces=list(surfaces),
        techniques=sorted(techs.values(), key=lambda t: t.uid),
        narrative=narrative,
        signals=list(signals),
        signal_count=state.signal_count,
        behaviours=list(state.behaviours),
        behaviours_truncated=state.behaviours_truncated,
        ocsf={},
        related_deployments=list(state.related),
        cluster=cluster,
    )
    if merged_into is not None:
        story.merged_into = merged_into
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
    """What a false-positive acceptance would add to the baseline: the story's deviations over all
    its signals (input findings are not behaviours of the agent and are never accepted). Stories
    from before `behaviours` was kept tell them by their signals."""
    told = {s.behaviour.key for s in story.signals if s.behaviour is not None and s.surface is not Surface.INPUT}
    return sorted(told | set(story.behaviours))
