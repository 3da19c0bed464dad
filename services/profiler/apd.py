"""Application Profile DNA: fold an agent's enriched events into its behavioural envelope.

One APD per Deployment: pods, replicas and restarts of the same Deployment fold into it.
Pure logic; the Faust app keeps `ApdState` in a changelogged table and the store.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from runward.core import techniques
from runward.core.config import observation_window
from runward.core.contracts import (
    ApdRevision,
    Autonomy,
    Behaviour,
    ConnectInfo,
    DeploymentSpecInfo,
    Egress,
    EnrichedEvent,
    ExecInfo,
    FlushInfo,
    LlmCallInfo,
    Signal,
    Surface,
    Syscall,
    WindowStatus,
)
from services.profiler.tools import ToolProfile, fold_tools

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
    novel_times: list[datetime] = Field(default_factory=list)
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


@dataclass
class Policy:
    """The knobs of folding, from configuration; the windows themselves are core's rule."""

    window_override_s: int | None
    drift_correlation_s: int

    def window(self, autonomy: Autonomy) -> timedelta:
        return observation_window(autonomy, self.window_override_s)


@dataclass(frozen=True)
class Observation:
    """One APD entry an event shows: a typed behaviour, or a refinement of one (`behaviour` None)."""

    category: str
    key: str
    behaviour: Behaviour | None = None


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
    state = state.model_copy(deep=True)
    result = FoldResult(state)
    if isinstance(event.detail, FlushInfo):
        return _maybe_publish(state, result, event, policy, {}, new_pod=False)
    if isinstance(event.detail, DeploymentSpecInfo):
        _apply_deployment_spec(state, event.ts, event.detail)
        return result

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
    return _maybe_publish(state, result, event, policy, added, new_pod)


def _apply_deployment_spec(state: ApdState, ts: datetime, spec: DeploymentSpecInfo) -> None:
    state.autonomy = spec.autonomy
    if spec.changed:
        state.last_deployment_change = ts


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
    """Learn one observation into the envelope, or signal it as a deviation; True when learnt."""
    category, key = observation.category, observation.key
    known = state.behaviours.get(category, [])
    if key in known:
        return False
    if status is WindowStatus.COMPLETE and category not in SILENT_CATEGORIES and observation.behaviour is not None:
        correlated = _deployment_correlated(state, event.ts, policy)
        if key not in state.deviations_signalled or correlated:
            result.signals.append(_deviation(event, observation.behaviour, correlated))
        if not correlated:
            # An unexplained deviation is evidence, never baseline: learning it would hide a repeat.
            if key not in state.deviations_signalled:
                state.deviations_signalled = [*state.deviations_signalled, key]
            return False
    state.behaviours[category] = sorted([*known, key])
    if category not in SILENT_CATEGORIES:
        state.last_novel_at = event.ts
        state.novel_times = [t for t in state.novel_times if event.ts - t < timedelta(hours=1)] + [event.ts]
    return True


def _maybe_publish(
    state: ApdState,
    result: FoldResult,
    event: EnrichedEvent,
    policy: Policy,
    added: dict[str, list[str]],
    new_pod: bool,
) -> FoldResult:
    status = window_status(state, event.ts, policy)
    announce = status is WindowStatus.COMPLETE and not state.window_complete_announced
    for category, behaviours in added.items():
        state.pending_added[category] = [*state.pending_added.get(category, []), *behaviours]
    immediate = announce or new_pod or any(c not in COALESCED_CATEGORIES for c in added)
    due = bool(state.pending_added) and (
        state.last_revision_at is None or event.ts - state.last_revision_at >= COALESCE
    )
    if immediate or due:
        state.window_complete_announced = state.window_complete_announced or announce
        state.revision += 1
        result.revision = _revision(state, event.ts, status, state.pending_added, policy)
        state.pending_added, state.last_revision_at = {}, event.ts
    return result


def observations(event: EnrichedEvent) -> list[Observation]:
    """The APD entries an event shows: its behaviour, and for an exec or an egress their refinement."""
    behaviour, detail = event.behaviour, event.detail
    if behaviour is None:
        return []
    found = [Observation(behaviour.category, behaviour.key, behaviour)]
    if isinstance(detail, ExecInfo) and detail.argv:
        found.append(Observation(EXEC_ARGS, f"{detail.binary} {argument_pattern(detail.argv)}".strip()))
    if isinstance(behaviour, Egress) and isinstance(detail, ConnectInfo) and detail.address:
        # Core NetworkPolicy cannot name hosts: the enforcer allows the addresses they resolved to.
        address = Egress(host=detail.address, port=behaviour.port, protocol=behaviour.protocol)
        found.append(Observation(EGRESS_IP, address.endpoint))
    return found


def argument_pattern(argv: list[str]) -> str:
    """argv[1:] with run-specific values folded, so one way of invoking a binary is one key."""
    return " ".join("*" if _VARIABLE_ARG.match(arg) else arg for arg in argv[1:])


def _deployment_correlated(state: ApdState, ts: datetime, policy: Policy) -> bool:
    change = state.last_deployment_change
    return change is not None and timedelta(0) <= ts - change <= timedelta(seconds=policy.drift_correlation_s)


def _signal_id(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:24]


def _deviation(event: EnrichedEvent, behaviour: Behaviour, correlated: bool) -> Signal:
    return Signal(
        signal_id=_signal_id(event.deployment, event.event_id, behaviour.key),
        deployment=event.deployment,
        ts=event.ts,
        surface=event.surface,
        title=f"{'expected drift' if correlated else 'outside APD baseline'}: {behaviour.key}",
        behaviour=behaviour,
        techniques=techniques.for_behaviour(behaviour),
        severity=1 if correlated else SEVERITY.get(event.surface, 3),
        deployment_correlated=correlated,
        evidence={
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
        novel_last_hour=len([t for t in state.novel_times if now - t < STABLE_AFTER]),
        behaviours={k: list(v) for k, v in sorted(state.behaviours.items())},
        added={k: sorted(v) for k, v in added.items()},
        partial=state.partial,
        last_deployment_change=state.last_deployment_change,
        pods_seen=list(state.pods_seen),
    )
