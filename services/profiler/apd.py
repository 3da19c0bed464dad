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
from runward.core.contracts import ApdRevision, EnrichedEvent, Signal, Surface, WindowStatus

# Behaviours learnt at any time without raising a signal: they refine, not widen, the envelope.
SILENT_CATEGORIES = frozenset({"egress_ip", "syscalls", "exec_args"})
_VARIABLE_ARG = re.compile(r"^(\d+|[0-9a-f]{8,}|/tmp/.*|/proc/\d+.*|[A-Za-z0-9+/=_-]{32,})$")
STABLE_AFTER = timedelta(hours=1)
# An agent's start-up opens hundreds of files in a second: those categories are published at
# most once per COALESCE of event time instead of one revision per file.
COALESCED_CATEGORIES = frozenset({"file", "syscalls", "exec_args", "egress_ip"})
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
    autonomy: str = "high"
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


@dataclass
class Policy:
    """The knobs of folding, from configuration."""

    window_s: dict[str, int]
    window_override_s: int | None
    drift_correlation_s: int

    def window(self, autonomy: str) -> timedelta:
        seconds = (
            self.window_override_s
            if self.window_override_s is not None
            else self.window_s.get(autonomy, self.window_s["high"])
        )
        return timedelta(seconds=seconds)


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


def fold(state: ApdState | None, event: EnrichedEvent, policy: Policy) -> FoldResult:  # noqa: C901 - to split (issue 8)
    if state is None:
        state = ApdState(deployment=event.deployment, window_started_at=event.ts)
    state = state.model_copy(deep=True)
    result = FoldResult(state)
    added: dict[str, list[str]] = {}

    if event.kind == FLUSH_KIND:
        return _maybe_publish(state, result, event, policy, added, new_pod=False)
    if event.kind == "deployment_spec":
        state.autonomy = str(event.detail.get("autonomy") or state.autonomy)
        if event.detail.get("changed"):
            state.last_deployment_change = event.ts
        return result

    new_pod = bool(event.pod) and event.pod not in state.pods_seen
    if new_pod:
        state.pods_seen = sorted([*state.pods_seen, str(event.pod)])
    if event.partial and not state.partial:
        state.partial = True  # the sensor lost events: the envelope may be missing behaviours
        added.setdefault("_flags", []).append("partial")

    result.signals.extend(_input_signals(event))
    status = window_status(state, event.ts, policy)

    for category, behaviour in _behaviours(event):
        known = state.behaviours.get(category, [])
        if behaviour in known:
            continue
        if status is WindowStatus.COMPLETE and category not in SILENT_CATEGORIES:
            correlated = _deployment_correlated(state, event.ts, policy)
            if behaviour not in state.deviations_signalled or correlated:
                result.signals.append(_deviation(event, category, behaviour, correlated))
            if not correlated:
                # An unexplained deviation is evidence, never baseline: learning it would hide a repeat.
                if behaviour not in state.deviations_signalled:
                    state.deviations_signalled = [*state.deviations_signalled, behaviour]
                continue
        state.behaviours[category] = sorted([*known, behaviour])
        added.setdefault(category, []).append(behaviour)
        if category not in SILENT_CATEGORIES:
            state.last_novel_at = event.ts
            state.novel_times = [t for t in state.novel_times if event.ts - t < timedelta(hours=1)] + [event.ts]

    return _maybe_publish(state, result, event, policy, added, new_pod)


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


def _behaviours(event: EnrichedEvent) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    if event.category and event.behaviour:
        pairs.append((event.category, event.behaviour))
    if event.category == "exec" and event.detail.get("argv"):
        pairs.append(("exec_args", f"{event.detail.get('binary')} {argument_pattern(event.detail['argv'])}".strip()))
    if event.category == "egress" and event.detail.get("address"):
        d = event.detail
        pairs.append(("egress_ip", f"{d['address']}:{d['port']}/{d['protocol']}"))
    return pairs


def argument_pattern(argv: list[str]) -> str:
    """argv[1:] with run-specific values folded, so one way of invoking a binary is one key."""
    return " ".join("*" if _VARIABLE_ARG.match(arg) else arg for arg in argv[1:])


def _deployment_correlated(state: ApdState, ts: datetime, policy: Policy) -> bool:
    change = state.last_deployment_change
    return change is not None and timedelta(0) <= ts - change <= timedelta(seconds=policy.drift_correlation_s)


def _signal_id(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:24]


def _deviation(event: EnrichedEvent, category: str, behaviour: str, correlated: bool) -> Signal:
    return Signal(
        signal_id=_signal_id(event.deployment, event.event_id, behaviour),
        deployment=event.deployment,
        ts=event.ts,
        surface=event.surface,
        title=f"{'expected drift' if correlated else 'outside APD baseline'}: {behaviour}",
        behaviour=behaviour,
        techniques=techniques.for_behaviour(category, behaviour),
        severity=1 if correlated else SEVERITY.get(event.surface, 3),
        deployment_correlated=correlated,
        evidence={
            "pod": event.pod,
            "kind": event.kind,
            "detail": event.detail,
            "flags": event.flags,
            "source": event.source.model_dump(),
        },
        source_event=event.event_id,
    )


def _input_signals(event: EnrichedEvent) -> list[Signal]:
    """Prompt findings and cross-agent triggers are signals whatever the window says."""
    signals: list[Signal] = []
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
                    "detector": event.detail.get("prompt_injection"),  # score, threshold, where, obfuscations
                    "model": event.detail.get("request_model"),
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
                    "tool": event.detail.get("tool_name"),
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
        autonomy=state.autonomy,  # type: ignore[arg-type]
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
