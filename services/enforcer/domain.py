"""Enforcer state: the latest APD, the mode the platform team promoted the agent to, and the
attack stories that hold its promotion gate. Every change yields a new policy bundle; a
promotion decision the gate refuses changes nothing.

Frozen once promoted: an enforce-mode bundle is built from the APD revision the approver
promoted on (`frozen`), whatever the profiler learns afterwards; newer revisions are listed on
the bundle as `pending_widening` until an approver accepts one (a signed decision with
`accept_apd_revision`). APD `pending` (a rollout's drift awaiting approval) is never in any
bundle's policies. Promoted with the Deployment: a bundle names the Deployment revision it was
built from; when another revision rolls out under an enforced agent, the agent goes to audit
under the frozen policies (`mode_reason` says why) until it is proven and promoted again.

Proven before enforced: the latest policy proof (`runward prove`, signed by the API) is kept;
promoting to enforce or accepting a newer revision needs a passing proof of that revision
(promotion_gate rule 6), which freezes with it (`frozen_proof`). An enforce-mode seccomp profile
is the proven one (the APD's syscalls and the runtime's, as the proof measured them), and
every bundle carries the proof it stands on."""

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
from runward.core.contracts.revision import PodTemplateRevision, same_revision
from services.enforcer import promotion_gate
from services.enforcer.documents import documents
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
    apd: ApdRevision | None = Field(default=None, description="the latest APD revision")
    mode: EnforcementMode = EnforcementMode.OBSERVE
    open_stories: list[str] = Field(default_factory=list)
    story_holds: dict[str, StoryHold] = Field(default_factory=dict)
    frozen: ApdRevision | None = Field(
        default=None,
        description="the APD revision enforce-mode policies are built from: set when an approver promotes to "
        "enforce or accepts a revision, kept while a rollout runs in audit under it",
    )
    mode_reason: str | None = Field(default=None, description="why the mode is not the approver's choice")
    proof: PolicyProof | None = Field(default=None, description="the latest signed proof (`runward prove`)")
    frozen_proof: PolicyProof | None = Field(
        default=None, description="the passing proof of `frozen`: its runtime syscalls are in the enforce profile"
    )


def gate(
    state: EnforcerState, decision: PromotionDecision, report: ReadinessReport | None = None
) -> promotion_gate.GateResult:
    """The whole promotion gate on the enforcer's own view of the agent, with its readiness for
    the decision's mode (`readiness_inputs.assess`); without one, going up is refused."""
    return promotion_gate.decide(decision.mode, state.mode, state.apd, _holding(state), report, state.proof)


def _holding(state: EnforcerState) -> list[StoryHold]:
    return [state.story_holds.get(s) or StoryHold(story_id=s) for s in state.open_stories]


def accept_gate(state: EnforcerState, decision: PromotionDecision) -> promotion_gate.GateResult:
    """An approver accepting a newer APD revision into an enforced agent's frozen policies: the
    checks of entering enforce (complete window, no open compromise story) on that revision, which
    must be the latest the enforcer has (a newer one holds behaviour the approver has not seen)."""
    reasons: list[str] = []
    latest = state.apd.revision if state.apd else None
    if state.mode is not EnforcementMode.ENFORCE or decision.mode is not EnforcementMode.ENFORCE:
        reasons.append(
            f"accepting an APD revision applies to an agent in enforce mode (it is in {state.mode.value}); "
            "promote it instead"
        )
    elif decision.accept_apd_revision != latest:
        reasons.append(
            f"APD revision {decision.accept_apd_revision} is not the latest ({latest}); review and accept {latest}"
        )
    else:
        entering = promotion_gate.evaluate(
            EnforcementMode.ENFORCE, EnforcementMode.AUDIT, state.apd, _holding(state), state.proof
        )
        reasons.extend(entering.reasons)
    return promotion_gate.GateResult(target=decision.mode, current=state.mode, reasons=tuple(reasons))


def _rolled_out(frozen: ApdRevision, latest: ApdRevision) -> bool:
    """The Deployment runs another revision than the one the frozen policies were built from
    (unknown on either side is no rollout: a revision first becoming known is not one)."""
    built, now = frozen.deployment_revision, latest.deployment_revision
    return built is not None and now is not None and not same_revision(built, now)


def _on_apd(state: EnforcerState, record: ApdRevision) -> bool:
    """Follow a new APD revision; False for a redelivered or out-of-date one."""
    if state.apd and record.revision <= state.apd.revision:
        return False
    state.apd = record
    frozen = state.frozen
    if frozen is not None and _rolled_out(frozen, record) and record.deployment_revision is not None:
        built = frozen.deployment_revision
        assert built is not None
        # Item 7: the new revision has not been proven under these policies; it runs in audit
        # under them (what it would break is audit evidence) until proven and approved again.
        state.mode = EnforcementMode.AUDIT
        state.mode_reason = (
            f"Deployment revision {_name(record.deployment_revision)} rolled out; the policies were built from "
            f"{_name(built)} (APD revision {frozen.revision}): audit under them until proven and promoted again"
        )
    return True


def _name(revision: PodTemplateRevision) -> str:
    return revision.pod_template_hash or revision.template_hash


def _on_decision(state: EnforcerState, record: PromotionDecision, report: ReadinessReport | None) -> None:
    if record.accept_apd_revision is not None:
        result = accept_gate(state, record)
        if not result.allowed:
            raise PromotionRefused(record, result)
        state.frozen, state.frozen_proof = state.apd, state.proof
        return
    result = gate(state, record, report)
    if not result.allowed:
        raise PromotionRefused(record, result)
    state.mode, state.mode_reason = record.mode, None
    # Promoted to enforce: the policies freeze on the APD the approver promoted on; any lower
    # mode follows the latest APD again.
    enforced = record.mode is EnforcementMode.ENFORCE
    state.frozen = state.apd if enforced else None
    state.frozen_proof = state.proof if enforced else None


def _on_story(state: EnforcerState, record: AttackStory) -> bool:
    stories = set(state.open_stories)
    if promotion_gate.holds(record):
        stories.add(record.story_id)
        hold = StoryHold(story_id=record.story_id, severity=record.severity, last_seen=record.last_seen)
        state.story_holds = {**state.story_holds, record.story_id: hold}
    else:
        stories.discard(record.story_id)
        state.story_holds = {k: v for k, v in state.story_holds.items() if k != record.story_id}
    if stories == set(state.open_stories):
        return False
    state.open_stories = sorted(stories)
    return True


def _own(state: EnforcerState) -> EnforcerState:
    """A copy of `state` that `apply` may change while the caller's stays as it was.

    Not a deep copy: that copied the APD revisions, proofs and story holds for every record, the
    largest part of `apply` for a learning agent. `apply` assigns the state's fields and replaces its
    containers (`open_stories`, `story_holds`), never changes them or the models it holds in
    place; the table may still hold the given state and a failed record must leave it as it was.
    tests/unit/test_enforcer_outputs.py checks that applying leaves the given state unchanged.
    """
    return state.model_copy()


def apply(
    state: EnforcerState | None, record: Any, now: datetime, report: ReadinessReport | None = None
) -> tuple[EnforcerState, PolicyBundle | None]:
    """The new state and, when it changed, the policy bundle; raises PromotionRefused.

    `report` is the readiness for a promotion decision's target mode (unused for other records)."""
    deployment = record.deployment
    state = _own(state or EnforcerState(deployment=deployment))
    if isinstance(record, ApdRevision):
        if not _on_apd(state, record):
            return state, None
    elif isinstance(record, PromotionDecision):
        _on_decision(state, record, report)
    elif isinstance(record, PolicyProof):
        if state.proof is not None and record.ran_at <= state.proof.ran_at:
            return state, None  # redelivered or older than the proof already held
        state.proof = record
    elif isinstance(record, AttackStory) and not _on_story(state, record):
        return state, None
    if state.apd is None:
        return state, None  # nothing observed yet: no policy can be derived
    state.revision += 1
    return state, bundle(state, now)


def pending_widening(built: ApdRevision, latest: ApdRevision) -> dict[str, list[str]]:
    """What the latest APD holds (learnt, or pending an approver) that the policies built from
    `built` do not allow: never in an enforce-mode policy until an approver accepts it."""
    widening: dict[str, list[str]] = {}
    # Built from the latest revision (not frozen), its own behaviours widen nothing.
    for envelope in (latest.pending,) if built is latest else (latest.behaviours, latest.pending):
        for category, keys in envelope.items():
            allowed = set(built.behaviours.get(category, []))
            new = sorted({*widening.get(category, []), *(k for k in keys if k not in allowed)})
            if new:
                widening[category] = new
    return widening


def bundle(state: EnforcerState, now: datetime) -> PolicyBundle:
    latest = state.apd
    assert latest is not None
    built = state.frozen or latest
    # The selector is immutable (apps/v1): one learnt after the frozen revision still names its pods.
    if built.pod_selector or not latest.pod_selector:
        source = built  # (a None or empty selector renders alike: no network policy)
    else:
        source = built.model_copy(update={"pod_selector": latest.pod_selector})
    mode = state.mode
    # In enforce, the profile is the proven one: the frozen revision's proof measured the runtime.
    proof = state.frozen_proof if mode is EnforcementMode.ENFORCE and state.frozen_proof else state.proof
    # Before enforce (observe, audit) the runtime's needs are those the latest passing proof measured:
    # the OCI runtime's own init then logs no would-be violation that is not the agent's.
    if mode is EnforcementMode.ENFORCE and state.frozen_proof:
        runtime = state.frozen_proof.runtime_syscalls
    elif state.proof is not None and state.proof.passed:
        runtime = state.proof.runtime_syscalls
    else:
        runtime = []
    return PolicyBundle(
        deployment=state.deployment,
        revision=state.revision,
        created_at=now,
        apd_revision=built.revision,
        latest_apd_revision=latest.revision,
        deployment_revision=built.deployment_revision,
        mode=mode,
        mode_reason=state.mode_reason,
        pending_widening=pending_widening(built, latest),
        open_stories=state.open_stories,
        proof=proof,
        **documents(source, mode, runtime),
    )
