"""Application Profile DNA: fold an agent's enriched events into its behavioural envelope.

One APD per Deployment: pods, replicas and restarts of the same Deployment fold into it.
Pure logic; the Faust app keeps `ApdState` in a changelogged table and the store.

The drift rule (what an attacker cannot teach the baseline): once the observation window is
complete, a new behaviour is expected drift only if it first appears in a pod of a revision newer
than the baseline's (a revision is the pod template, never a scale or an annotation edit), within
the drift window after that rollout began, and pods of the old revision have not shown it; input-
and identity-surface behaviours are never drift. Drift is learnt into `pending`, which the
enforcer may apply in observe/audit but which reaches an enforce-mode policy only once an
approver accepts it. Anything else new after the window is a signal and is never learnt.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from pydantic import BaseModel, Field, TypeAdapter, field_validator

from runward.core import techniques
from runward.core.config import observation_window
from runward.core.contracts import (
    ApdRevision,
    Autonomy,
    BaselineAcceptInfo,
    Behaviour,
    ConnectInfo,
    DeploymentSpecInfo,
    Egress,
    EnrichedEvent,
    ExecInfo,
    FlushInfo,
    K8sApiInfo,
    LlmCallInfo,
    Signal,
    Surface,
    Syscall,
    Technique,
    ToolCall,
    WindowStatus,
    parse_behaviour,
)
from runward.core.contracts.revision import PodTemplateRevision
from services.profiler.tools import ToolProfile, argument_rules, fold_tools

# APD categories that refine a typed behaviour (not behaviours themselves): an exec's argument
# pattern, an egress' resolved address as an `Egress.endpoint`.
EXEC_ARGS, EGRESS_IP = "exec_args", "egress_ip"
# Behaviours learnt at any time without raising a signal: they refine, not widen, the envelope.
SILENT_CATEGORIES = frozenset({EGRESS_IP, Syscall.CATEGORY, EXEC_ARGS})
_VARIABLE_ARG = re.compile(r"^(\d+|[0-9a-f]{8,}|/tmp/.*|/proc/\d+.*|[A-Za-z0-9+/=_-]{32,})$")
STABLE_AFTER = timedelta(hours=1)
# An agent's start-up opens hundreds of files in a second: those categories are published at
# most once per COALESCE of event time instead of one revision per file.
COALESCED_CATEGORIES = frozenset({"file", Syscall.CATEGORY, EXEC_ARGS, EGRESS_IP})
COALESCE = timedelta(seconds=10)
FLUSH_KIND = "flush"  # punctuation on the enriched topic: no behaviour, time has passed
SEVERITY = {
    Surface.IDENTITY: 4,
    Surface.TOOL: 3,
    Surface.MULTI_AGENT: 4,
    Surface.NETWORK: 3,
    Surface.PROCESS: 3,
    Surface.FILE: 2,
    Surface.INPUT: 3,
}


class ApdState(BaseModel):
    deployment: str
    autonomy: Autonomy = Autonomy.HIGH
    revision: int = 0
    window_started_at: datetime
    behaviours: dict[str, list[str]] = Field(default_factory=dict)
    novel_times: list[int] = Field(
        default_factory=list,
        description="event times of the last hour's novelties, in µs since the epoch (`micros`)",
    )
    last_novel_at: datetime | None = None
    partial: bool = False
    last_deployment_change: datetime | None = None
    window_complete_announced: bool = False
    deviations_signalled: list[str] = Field(default_factory=list)
    pods_seen: list[str] = Field(default_factory=list)
    pending_added: dict[str, list[str]] = Field(
        default_factory=dict, description="learnt but not yet published (coalesced categories)"
    )
    last_revision_at: datetime | None = None
    tool_profile: ToolProfile = Field(default_factory=ToolProfile, description="services/profiler/tools.py")
    baseline_revision: str | None = Field(default=None, description="pod-template revision the baseline was learnt on")
    rollout_revision: str | None = Field(default=None, description="a newer revision being rolled out, if any")
    pending: dict[str, list[str]] = Field(
        default_factory=dict, description="drift of the rollout learnt pending approval: observe/audit only"
    )
    watermark: datetime | None = Field(default=None, description="the latest event time folded")
    deployment_revision: PodTemplateRevision | None = Field(
        default=None, description="the revision the Deployment runs now (its latest spec), for the enforcer"
    )
    pod_selector: dict[str, Any] | None = Field(default=None, description="the Deployment's spec.selector")
    recent_deliveries: list[str] = Field(
        default_factory=list, description="digests of the last events folded, to fold a redelivered one once"
    )

    @field_validator("novel_times", mode="before")
    @classmethod
    def _novel_micros(cls, value: Any) -> Any:
        # Integers because the state is serialised into the table's changelog once per batch, and
        # an hour of novelties as times (ISO strings) was most of that (issue 14). A state written
        # before holds the times themselves: they are read as the same instants.
        if not isinstance(value, list):
            return value
        return [v if isinstance(v, int) else micros(_TIME.validate_python(v)) for v in value]


_TIME: TypeAdapter[datetime] = TypeAdapter(datetime)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def micros(ts: datetime) -> int:
    """`ts` in whole µs since the epoch: integers compare exactly as the times do; a zone-less
    time is refused, as it is at decode (event times are zoned)."""
    if ts.utcoffset() is None:
        raise ValueError(f"{ts.isoformat()} has no time zone")
    return (ts - _EPOCH) // _MICROSECOND


def _novel_since(times: list[int], now: datetime) -> list[int]:
    """The novelties less than STABLE_AFTER before `now` (or after it), in their order:
    `now - t < STABLE_AFTER` as integers, one bound for all (a subtraction per time was most of
    learning's cost, the list holds every novelty of an hour)."""
    bound = micros(now) - STABLE_AFTER // _MICROSECOND
    return [t for t in times if t > bound]


@dataclass(frozen=True)
class Policy:
    """The knobs of folding, from configuration; the windows themselves are core's rule."""

    window_override_s: int | None
    drift_correlation_s: int
    # Each autonomy's window, asked twice per event: kept (the knobs are frozen, so it cannot go stale).
    _windows: dict[Autonomy, timedelta] = field(default_factory=dict, init=False, repr=False, compare=False)

    def window(self, autonomy: Autonomy) -> timedelta:
        window = self._windows.get(autonomy)
        if window is None:
            window = self._windows[autonomy] = observation_window(autonomy, self.window_override_s)
        return window


class Observation(NamedTuple):
    """One APD entry an event shows: a typed behaviour, or a refinement of one (`behaviour` None).

    A named tuple, not a frozen dataclass: up to two per event, built several times faster."""

    category: str
    key: str
    behaviour: Behaviour | None = None
    parent: Behaviour | None = None  # for a refinement: the behaviour it refines


@dataclass
class FoldResult:
    state: ApdState
    revision: ApdRevision | None = None
    signals: list[Signal] = field(default_factory=list)


def window_status(state: ApdState, now: datetime, policy: Policy) -> WindowStatus:
    if now >= state.window_started_at + policy.window(state.autonomy):
        return WindowStatus.COMPLETE
    if state.last_novel_at is None or now - state.last_novel_at >= STABLE_AFTER:
        return WindowStatus.STABLE
    return WindowStatus.LEARNING


def fold(state: ApdState | None, event: EnrichedEvent, policy: Policy) -> FoldResult:
    """The APD after one more event: what it learnt, the revision to publish, the signals raised."""
    if state is None:
        state = ApdState(deployment=event.deployment, window_started_at=event.ts)
    state = _own(state, event)
    result = FoldResult(state)
    if isinstance(event.detail, FlushInfo):
        return _maybe_publish(state, result, event, policy, {}, new_pod=False)
    if isinstance(event.detail, DeploymentSpecInfo):
        _apply_deployment_spec(state, event.ts, event.detail)
        if not _note_deployment(state, event.detail) or state.revision == 0:
            return result
        # The enforcer names the revision each bundle was built from and puts a rollout of an
        # enforced agent back in audit: it hears of the revision at once, not with the next behaviour.
        return _maybe_publish(state, result, event, policy, {"_flags": ["deployment_revision"]}, new_pod=False)
    if isinstance(event.detail, BaselineAcceptInfo):
        return _accepted(state, event, event.detail, policy)

    delivery = _delivery(event)
    if delivery in state.recent_deliveries:
        return FoldResult(state)  # a redelivery: folded once already
    recent = state.recent_deliveries[1 - REDELIVERY_MEMORY :]  # a new list: the given state's stays
    recent.append(delivery)
    state.recent_deliveries = recent
    new_pod = _note_pod(state, event.pod)
    added: dict[str, list[str]] = {}
    if event.partial and not state.partial:
        state.partial = True  # the sensor lost events: the envelope may be missing behaviours
        added.setdefault("_flags", []).append("partial")
    result.signals.extend(_input_signals(event))
    status = window_status(state, event.ts, policy)
    result.signals.extend(fold_tools(state.tool_profile, event, frozen=status is WindowStatus.COMPLETE))
    for observation in observations(event):
        if _learn(state, result, event, observation, status, policy):
            added.setdefault(observation.category, []).append(observation.key)
    hijacked = any(s.surface in NEVER_DRIFT and not s.deployment_correlated for s in result.signals)
    if hijacked and _void_drift(state, event.ts, policy):
        added.setdefault("_flags", []).append("drift_voided")  # published now: policies must drop it
    return _maybe_publish(state, result, event, policy, added, new_pod)


# Kafka delivers at least once: a stage that restarts or rebalances reads again what it had not
# committed, and a producer's retry can write a record twice. Folded twice, one tool call would be
# its own predecessor (a false transition) and count twice towards a burst. A redelivery comes
# within a commit interval of the original; this many of an agent's last events are remembered.
REDELIVERY_MEMORY = 256


def _delivery(event: EnrichedEvent) -> str:
    """The event's identity: where ingest read it, and its id (one raw record may give several)."""
    where = f"{event.source.topic}:{event.source.partition}:{event.source.offset}:{event.event_id}"
    return hashlib.blake2b(where.encode(), digest_size=6).hexdigest()


def _own(state: ApdState, event: EnrichedEvent) -> ApdState:
    """A copy of `state` that `fold` may change while the caller's stays as it was.

    Not a deep copy: that copied every behaviour, pod and time of the envelope for every event
    and was most of the profiler's cost. `fold` replaces the state's values, lists and dicts
    (an envelope dict with one entry changed is a new dict: `_with`), never changes them in
    place; for a tool call the tool profile is copied here and `fold_tools` replaces what it
    changes the same way (copying the envelope dicts for every event, and every argument
    profile for every tool call, cost more than most events change). tests/unit/test_profiler_apd.py,
    test_profiler_tools.py and test_profiler_reference.py check that folding leaves the given
    state unchanged.
    """
    if isinstance(event.detail, LlmCallInfo) and isinstance(event.behaviour, ToolCall):
        return state.model_copy(update={"tool_profile": state.tool_profile.model_copy()})
    return state.model_copy()


def _with(envelope: dict[str, list[str]], category: str, keys: list[str]) -> dict[str, list[str]]:
    """`envelope` with `category`'s entry replaced: a new dict, the given one stays as it was."""
    return {**envelope, category: keys}


def _void_drift(state: ApdState, ts: datetime, policy: Policy) -> bool:
    """An input finding or an identity deviation during a rollout's drift window: the rollout no
    longer explains anything new. What was pending becomes evidence, never baseline."""
    change = state.last_deployment_change
    if state.rollout_revision is None or change is None:
        return False
    if not timedelta(0) <= ts - change <= timedelta(seconds=policy.drift_correlation_s):
        return False
    voided = [k for c, keys in state.pending.items() if c not in SILENT_CATEGORIES for k in keys]
    state.deviations_signalled = [
        *state.deviations_signalled,
        *(k for k in voided if k not in state.deviations_signalled),
    ]
    state.pending, state.rollout_revision = {}, None
    return True


def _apply_deployment_spec(state: ApdState, ts: datetime, spec: DeploymentSpecInfo) -> None:
    state.autonomy = spec.autonomy
    if spec.revision is None:
        return  # no pod template known: nothing can be told apart as a rollout's drift
    if state.baseline_revision is None:
        state.baseline_revision = spec.revision
    elif spec.changed and spec.revision != state.baseline_revision:
        state.rollout_revision, state.last_deployment_change = spec.revision, ts
    elif spec.changed:
        state.rollout_revision = None  # rolled back to the baseline's revision: no drift to expect


def _note_deployment(state: ApdState, spec: DeploymentSpecInfo) -> bool:
    """Keep what the enforcer needs of the Deployment; True when it changed."""
    revision = (
        PodTemplateRevision(
            template_hash=spec.revision, pod_template_hash=spec.pod_template_hash, image_digests=spec.image_digests
        )
        if spec.revision is not None
        else state.deployment_revision
    )
    selector = spec.selector if spec.selector is not None else state.pod_selector
    if revision == state.deployment_revision and selector == state.pod_selector:
        return False
    state.deployment_revision, state.pod_selector = revision, selector
    return True


def _note_pod(state: ApdState, pod: str | None) -> bool:
    """Record a pod of the Deployment; True when it is new (a replica or a restart)."""
    if not pod or pod in state.pods_seen:
        return False
    state.pods_seen = sorted([*state.pods_seen, pod])
    return True


def _learn(
    state: ApdState,
    result: FoldResult,
    event: EnrichedEvent,
    observation: Observation,
    status: WindowStatus,
    policy: Policy,
) -> bool:
    """Learn one observation into the envelope (or its pending drift), or signal it; True when learnt."""
    category, key = observation.category, observation.key
    if denied(event):
        if isinstance(event.detail, LlmCallInfo) and key in state.behaviours.get(category, []):
            return False  # a known tool refused for its arguments: the argument signal says so
        return _attempted(state, result, event, observation, status)
    known = state.behaviours.get(category, [])
    if key in known:
        return False
    if status is not WindowStatus.COMPLETE:
        state.behaviours = _add(state.behaviours, category, key)
        _note_novel(state, category, event.ts)
        return True
    if observation.behaviour is None:
        return _refine(state, observation)
    drift = _is_drift(state, event, observation, policy)
    pending = key in state.pending.get(category, [])
    if pending and drift:
        return False  # the rollout's pods again: already pending approval
    if key not in state.deviations_signalled or drift:
        result.signals.append(_deviation(event, observation.behaviour, drift))
    if drift:
        state.pending = _add(state.pending, category, key)
        _note_novel(state, category, event.ts)
        return True
    if pending:
        # Old-revision pods (or the window is over) show it too: it was never the rollout's drift.
        state.pending = _with(state.pending, category, [k for k in state.pending[category] if k != key])
    # An unexplained deviation is evidence, never baseline: learning it would hide a repeat.
    if key not in state.deviations_signalled:
        state.deviations_signalled = [*state.deviations_signalled, key]
    return False


def denied(event: EnrichedEvent) -> bool:
    """An API call the cluster refused, or a tool call the gateway refused: attempted, not achieved."""
    if isinstance(event.detail, LlmCallInfo):
        return event.detail.refused
    return isinstance(event.detail, K8sApiInfo) and event.detail.code in {401, 403}


def _attempted(
    state: ApdState, result: FoldResult, event: EnrichedEvent, observation: Observation, status: WindowStatus
) -> bool:
    """A refused call is never baseline (the agent does not hold that permission, so learning it
    would hide the day it does); after the window it is a signal of its own, weighted apart from
    the same call achieved so a refused try cannot mask a later success."""
    marker = f"{observation.key} (denied)"
    if (
        status is WindowStatus.COMPLETE
        and observation.behaviour is not None
        and marker not in state.deviations_signalled
    ):
        state.deviations_signalled = [*state.deviations_signalled, marker]
        result.signals.append(_deviation(event, observation.behaviour, False))
    return False


def _refine(state: ApdState, observation: Observation) -> bool:
    """After the window a refinement (an exec's arguments, an egress' address) follows its
    behaviour: into the baseline if the behaviour is there, pending if it is pending, else nowhere
    (the address of a signalled destination must never reach a NetworkPolicy)."""
    parent = observation.parent
    if parent is None:
        return False
    if parent.key in state.behaviours.get(parent.category, []):
        state.behaviours = _add(state.behaviours, observation.category, observation.key)
        return True
    if parent.key in state.pending.get(parent.category, []):
        if observation.key in state.pending.get(observation.category, []):
            return False
        state.pending = _add(state.pending, observation.category, observation.key)
        return True
    return False


def _add(envelope: dict[str, list[str]], category: str, key: str) -> dict[str, list[str]]:
    """`envelope` with `key` learnt under `category` (a new dict: see `_own`)."""
    return _with(envelope, category, sorted({*envelope.get(category, []), key}))


def _note_novel(state: ApdState, category: str, ts: datetime) -> None:
    if category not in SILENT_CATEGORIES:
        state.last_novel_at = ts
        state.novel_times = [*_novel_since(state.novel_times, ts), micros(ts)]


def _accepted(state: ApdState, event: EnrichedEvent, accepted: BaselineAcceptInfo, policy: Policy) -> FoldResult:
    """Fold an approver's acceptance and publish the widened baseline at once."""
    behaviours = []
    for key in accepted.behaviours:
        try:
            behaviours.append(parse_behaviour(key))
        except ValueError:
            continue  # the API sends the story's own keys; an unknown kind is not ours to learn
    accepted_keys = {b.key for b in behaviours}
    pending_behaviours = {k for c, keys in state.pending.items() if c not in SILENT_CATEGORIES for k in keys}
    # Pending refinements go with the pending drift once all of it is accepted.
    refinements = (
        {c: list(keys) for c, keys in state.pending.items() if c in SILENT_CATEGORIES}
        if pending_behaviours and pending_behaviours <= accepted_keys
        else {}
    )
    state = accept(state, behaviours, refinements)
    added: dict[str, list[str]] = {}
    for b in behaviours:
        added.setdefault(b.category, []).append(b.key)
    for category, keys in refinements.items():
        added.setdefault(category, []).extend(keys)
    result = FoldResult(state)
    return _maybe_publish(state, result, event, policy, added, new_pod=True)


def accept(state: ApdState, behaviours: list[Behaviour], refinements: dict[str, list[str]]) -> ApdState:
    """An approver's acceptance (audited by the API): the behaviours, and their pending refinements,
    join the baseline that enforce-mode policies are built from."""
    state = state.model_copy(deep=True)
    for behaviour in behaviours:
        state.behaviours = _add(state.behaviours, behaviour.category, behaviour.key)
        pending = [k for k in state.pending.get(behaviour.category, []) if k != behaviour.key]
        state.pending = _with(state.pending, behaviour.category, pending)
        state.deviations_signalled = [k for k in state.deviations_signalled if k != behaviour.key]
    for category, keys in refinements.items():
        for key in keys:
            state.behaviours = _add(state.behaviours, category, key)
            state.pending = _with(state.pending, category, [k for k in state.pending.get(category, []) if k != key])
    state.pending = {c: keys for c, keys in state.pending.items() if keys}
    return state


def _maybe_publish(
    state: ApdState,
    result: FoldResult,
    event: EnrichedEvent,
    policy: Policy,
    added: dict[str, list[str]],
    new_pod: bool,
) -> FoldResult:
    # Topics interleave: an older event may be handled after a newer one. A revision states the
    # window as of the latest event time seen, so the newest revision never steps back to learning.
    state.watermark = max(state.watermark or event.ts, event.ts)
    status = window_status(state, state.watermark, policy)
    announce = status is WindowStatus.COMPLETE and not state.window_complete_announced
    if added:
        state.pending_added = {
            **state.pending_added,
            **{category: [*state.pending_added.get(category, []), *keys] for category, keys in added.items()},
        }
    immediate = announce or new_pod or (bool(added) and any(c not in COALESCED_CATEGORIES for c in added))
    due = bool(state.pending_added) and (
        state.last_revision_at is None or event.ts - state.last_revision_at >= COALESCE
    )
    if immediate or due:
        state.window_complete_announced = state.window_complete_announced or announce
        state.revision += 1
        result.revision = _revision(state, state.watermark, status, state.pending_added, policy)
        state.pending_added, state.last_revision_at = {}, event.ts
    return result


def observations(event: EnrichedEvent) -> list[Observation]:
    """The APD entries an event shows: its behaviour, and for an exec or an egress their refinement."""
    behaviour, detail = event.behaviour, event.detail
    if behaviour is None:
        return []
    found = [Observation(behaviour.category, behaviour.key, behaviour)]
    if isinstance(detail, ExecInfo) and detail.argv:
        pattern = f"{detail.binary} {argument_pattern(detail.argv)}".strip()
        found.append(Observation(EXEC_ARGS, pattern, parent=behaviour))
    if isinstance(behaviour, Egress) and isinstance(detail, ConnectInfo) and detail.address:
        # Core NetworkPolicy cannot name hosts: the enforcer allows the addresses they resolved to.
        # Validated, not `model_construct`ed: pydantic's validation in Rust is the faster of the two.
        address = Egress(host=detail.address, port=behaviour.port, protocol=behaviour.protocol)
        found.append(Observation(EGRESS_IP, address.endpoint, parent=behaviour))
    return found


def argument_pattern(argv: list[str]) -> str:
    """argv[1:] with run-specific values folded, so one way of invoking a binary is one key."""
    return " ".join("*" if _VARIABLE_ARG.match(arg) else arg for arg in argv[1:])


# Surfaces an attacker reaches from outside the pod template: no rollout explains them.
NEVER_DRIFT = frozenset({Surface.INPUT, Surface.IDENTITY})


def _is_drift(state: ApdState, event: EnrichedEvent, observation: Observation, policy: Policy) -> bool:
    """The drift rule (module docstring): the rollout's own pods, its window, nothing older shows it."""
    change, rollout = state.last_deployment_change, state.rollout_revision
    return (
        event.surface not in NEVER_DRIFT
        and rollout is not None
        and change is not None
        and event.revision == rollout
        and timedelta(0) <= event.ts - change <= timedelta(seconds=policy.drift_correlation_s)
        and observation.key not in state.deviations_signalled
    )


def _signal_id(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:24]


# Identity techniques that, achieved, hand the attacker the cluster or other workloads.
ESCALATING = frozenset(
    {techniques.CLUSTER_ROLE_BINDING.uid, techniques.CONTAINER_ADMIN_COMMAND.uid, techniques.ACCESS_TOKEN.uid}
)
ATTEMPTED_SEVERITY = 2


def _severity(event: EnrichedEvent, found: list[Technique], correlated: bool) -> int:
    if correlated:
        return 1
    if denied(event):
        return ATTEMPTED_SEVERITY
    base = SEVERITY.get(event.surface, 3)
    return min(5, base + 1) if any(t.uid in ESCALATING for t in found) else base


def _deviation(event: EnrichedEvent, behaviour: Behaviour, correlated: bool) -> Signal:
    found = techniques.for_behaviour(behaviour)
    title = "expected drift" if correlated else "outside APD baseline"
    if denied(event):
        refuser = "the tool gateway" if isinstance(event.detail, LlmCallInfo) else "the API server"
        title = f"attempted, refused by {refuser}, outside APD baseline"
    return Signal(
        signal_id=_signal_id(event.deployment, event.event_id, behaviour.key),
        deployment=event.deployment,
        ts=event.ts,
        surface=event.surface,
        title=f"{title}: {behaviour.key}",
        behaviour=behaviour,
        techniques=found,
        severity=_severity(event, found, correlated),
        deployment_correlated=correlated,
        evidence={
            "outcome": "attempted" if denied(event) else "achieved",
            "revision": event.revision,
            "service_account": event.service_account,
            "pod": event.pod,
            "kind": event.kind,
            "detail": event.detail.model_dump(mode="json"),
            "flags": event.flags,
            "source": event.source.model_dump(),
        },
        source_event=event.event_id,
    )


def _input_signals(event: EnrichedEvent) -> list[Signal]:
    """Prompt findings and cross-agent triggers are signals whatever the window says."""
    if not event.flags:
        return []
    signals: list[Signal] = []
    call = event.detail if isinstance(event.detail, LlmCallInfo) else None
    rules = [f.split(":") for f in event.flags if f.startswith("prompt_injection:")]
    if rules:
        found = sorted({t for _, _, t in rules})
        signals.append(
            Signal(
                signal_id=_signal_id(event.deployment, event.event_id, "input"),
                deployment=event.deployment,
                ts=event.ts,
                surface=Surface.INPUT,
                title="prompt injection / jailbreak patterns in agent input: " + ", ".join(r for _, r, _ in rules),
                techniques=[techniques.BY_ID[t] for t in found],
                severity=3,
                evidence={
                    "pod": event.pod,
                    "service_account": event.service_account,
                    "rules": [r for _, r, _ in rules],
                    "detector": call.prompt_injection if call else None,  # score, threshold, where, obfuscations
                    "model": call.request_model if call else None,
                    "source": event.source.model_dump(),
                },
                source_event=event.event_id,
            )
        )
    callers = [f.split(":", 1)[1] for f in event.flags if f.startswith("multi_agent:")]
    if callers:
        signals.append(
            Signal(
                signal_id=_signal_id(event.deployment, event.event_id, "multi_agent"),
                deployment=event.deployment,
                ts=event.ts,
                surface=Surface.MULTI_AGENT,
                title=f"tool call triggered by another agent's output ({callers[0]})",
                behaviour=event.behaviour,
                techniques=[techniques.INDIRECT_INJECTION, techniques.TOOL_INVOCATION],
                severity=3,
                evidence={
                    "pod": event.pod,
                    "caller_agent": callers[0],
                    "tool": call.tool_name if call else None,
                    "source": event.source.model_dump(),
                },
                source_event=event.event_id,
            )
        )
    return signals


def _revision(
    state: ApdState, now: datetime, status: WindowStatus, added: dict[str, list[str]], policy: Policy
) -> ApdRevision:
    return ApdRevision(
        deployment=state.deployment,
        revision=state.revision,
        created_at=now,
        autonomy=state.autonomy,
        window_started_at=state.window_started_at,
        window_ends_at=state.window_started_at + policy.window(state.autonomy),
        window_status=status,
        novel_last_hour=len(_novel_since(state.novel_times, now)),
        behaviours={k: list(v) for k, v in sorted(state.behaviours.items())},
        added={k: sorted(v) for k, v in added.items()},
        pending={k: list(v) for k, v in sorted(state.pending.items())},
        partial=state.partial,
        last_deployment_change=state.last_deployment_change,
        pods_seen=list(state.pods_seen),
        deployment_revision=state.deployment_revision,
        pod_selector=state.pod_selector,
        tool_arguments=argument_rules(state.tool_profile),
    )
