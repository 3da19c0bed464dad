"""Enforcer state: the latest APD, the mode the platform team promoted the agent to, and the
attack stories that hold its promotion gate. Every change yields a new policy bundle; a
promotion decision the gate refuses changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from runward.core.contracts import (
    ApdRevision,
    AttackStory,
    EnforcementMode,
    PolicyBundle,
    PromotionDecision,
)
from services.enforcer import promotion_gate
from services.enforcer.policies import egress_allowlist, network_policy, seccomp_profile
from services.enforcer.readiness import ReadinessReport


class StoryHold(BaseModel):
    """The enforcer's note of an open 'potential compromise' story, enough for the gate's reasons."""

    story_id: str
    severity: int | None = None
    last_seen: datetime | None = None


class PromotionRefused(ValueError):
    """The promotion gate refused a decision; the enforcer state is unchanged."""

    def __init__(self, decision: PromotionDecision, result: promotion_gate.GateResult) -> None:
        self.result = result
        super().__init__(
            f"promotion of {decision.deployment} from {result.current.value} to {decision.mode.value} "
            f"(approver {decision.approver}) refused by the promotion gate: " + "; ".join(result.reasons)
        )


class EnforcerState(BaseModel):
    deployment: str
    revision: int = 0
    apd: ApdRevision | None = None
    mode: EnforcementMode = EnforcementMode.OBSERVE
    open_stories: list[str] = Field(default_factory=list)
    story_holds: dict[str, StoryHold] = Field(default_factory=dict)
    pod_labels: dict[str, str] = Field(default_factory=dict)


def gate(
    state: EnforcerState, decision: PromotionDecision, report: ReadinessReport | None = None
) -> promotion_gate.GateResult:
    """The whole promotion gate on the enforcer's own view of the agent, with its readiness for
    the decision's mode (`readiness_inputs.assess`); without one, going up is refused."""
    holding = [state.story_holds.get(s) or StoryHold(story_id=s) for s in state.open_stories]
    return promotion_gate.decide(decision.mode, state.mode, state.apd, holding, report)


def apply(
    state: EnforcerState | None, record: Any, now: datetime, report: ReadinessReport | None = None
) -> tuple[EnforcerState, PolicyBundle | None]:
    """The new state and, when it changed, the policy bundle; raises PromotionRefused.

    `report` is the readiness for a promotion decision's target mode (unused for other records)."""
    deployment = record.deployment
    state = (state or EnforcerState(deployment=deployment)).model_copy(deep=True)
    if isinstance(record, ApdRevision):
        if state.apd and record.revision <= state.apd.revision:
            return state, None  # redelivered or out-of-date revision
        state.apd = record
    elif isinstance(record, PromotionDecision):
        result = gate(state, record, report)
        if not result.allowed:
            raise PromotionRefused(record, result)
        state.mode = record.mode
    elif isinstance(record, AttackStory):
        stories = set(state.open_stories)
        if promotion_gate.holds(record):
            stories.add(record.story_id)
            state.story_holds[record.story_id] = StoryHold(
                story_id=record.story_id, severity=record.severity, last_seen=record.last_seen
            )
        else:
            stories.discard(record.story_id)
            state.story_holds.pop(record.story_id, None)
        if stories == set(state.open_stories):
            return state, None
        state.open_stories = sorted(stories)
    if state.apd is None:
        return state, None  # nothing observed yet: no policy can be derived
    state.revision += 1
    return state, bundle(state, now)


def bundle(state: EnforcerState, now: datetime) -> PolicyBundle:
    assert state.apd is not None
    return PolicyBundle(
        deployment=state.deployment,
        revision=state.revision,
        created_at=now,
        apd_revision=state.apd.revision,
        mode=state.mode,
        egress_allowlist=egress_allowlist(state.apd),
        network_policy=network_policy(state.apd, state.mode, state.pod_labels),
        seccomp_profile=seccomp_profile(state.apd, state.mode),
        open_stories=state.open_stories,
    )
