"""Enforcer state: the latest APD, the mode the platform team promoted the agent to, the
attack stories that hold its promotion gate and the latest policy proof. Every change yields a
new policy bundle; a promotion decision the gate refuses changes nothing. Every bundle carries
the latest proof; an enforce-mode bundle's seccomp profile is the proven one (the APD's
syscalls and the runtime's, as the proof measured them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from runward.core.contracts import (
    ApdRevision,
    AttackStory,
    EnforcementMode,
    PolicyBundle,
    PolicyProof,
    PromotionDecision,
)
from services.enforcer import promotion_gate
from services.enforcer.policies import egress_allowlist, network_policy, seccomp_profile


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
    proof: PolicyProof | None = Field(default=None, description="the latest signed proof (`runward prove`)")


def gate(state: EnforcerState, decision: PromotionDecision) -> promotion_gate.GateResult:
    """The promotion gate on the enforcer's own view of the agent."""
    holding = [state.story_holds.get(s) or StoryHold(story_id=s) for s in state.open_stories]
    return promotion_gate.evaluate(decision.mode, state.mode, state.apd, holding, state.proof)


def apply(state: EnforcerState | None, record: Any, now: datetime) -> tuple[EnforcerState, PolicyBundle | None]:
    """The new state and, when it changed, the policy bundle; raises PromotionRefused."""
    deployment = record.deployment
    state = (state or EnforcerState(deployment=deployment)).model_copy(deep=True)
    if isinstance(record, ApdRevision):
        if state.apd and record.revision <= state.apd.revision:
            return state, None  # redelivered or out-of-date revision
        state.apd = record
    elif isinstance(record, PromotionDecision):
        result = gate(state, record)
        if not result.allowed:
            raise PromotionRefused(record, result)
        state.mode = record.mode
    elif isinstance(record, PolicyProof):
        if state.proof is not None and record.ran_at <= state.proof.ran_at:
            return state, None  # redelivered or older than the proof already held
        state.proof = record
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
    if state.mode is EnforcementMode.ENFORCE and not promotion_gate.proven(state.apd, state.proof):
        # An enforce-mode bundle only ever for a proven profile: the last one stays in force
        # until the new APD revision is proven (`runward prove`) or the agent steps back.
        return state, None
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
        seccomp_profile=_seccomp(state),
        open_stories=state.open_stories,
        proof=state.proof,
    )


def _seccomp(state: EnforcerState) -> dict[str, Any]:
    """The bundle's profile; in enforce, the proven one (the runtime's measured needs included)."""
    assert state.apd is not None
    if state.mode is EnforcementMode.ENFORCE and state.proof is not None:
        return promotion_gate.enforce_profile(state.apd, state.proof)
    return seccomp_profile(state.apd, state.mode)
