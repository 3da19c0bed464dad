"""Manual promotion through Observe -> Audit -> Enforce: the one state-changing endpoint."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.responses import JSONResponse

from runward.control.api import golive
from runward.control.api.auth import Principal, require_approver
from runward.control.api.deps import Name, Namespace, find_agent, get_publisher, get_settings, get_store
from runward.control.api.publisher import Publisher
from runward.control.api.routes.proofs import latest_proof
from runward.control.api.schemas import ErrorBody, GateRefusal, PolicyAcceptRequest, PromotionRequest
from runward.control.api.state import load_state
from runward.core.config import Settings
from runward.core.contracts import EnforcementMode, PromotionDecision, utcnow
from runward.core.store import Store, history
from runward.core.topics import PROMOTIONS
from services.enforcer import promotion_gate

log = logging.getLogger(__name__)
router = APIRouter(tags=["promotion"])


@router.post(
    "/agents/{namespace}/{name}/promotion",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PromotionDecision,
    summary="Promote (or step back) an agent's enforcement mode",
    description="Approver role only. Promoting to audit or enforce needs a complete APD observation "
    "window and no open 'potential compromise' attack story; enforce also needs the agent "
    "to be in audit. Going up also needs the go-live readiness checks of the target mode "
    "(`GET .../readiness`: AI-BOM reviewed, ServiceAccount, reconciliation, policies proven, "
    "audit soak...) to pass or be waived. Stepping back (rollback) is always allowed. The "
    "decision is signed by the person the approver token names, published to "
    f"`{PROMOTIONS.name}` for the enforcer (which emits the new policy bundle) and appended to "
    "the go-live history.",
    responses={
        403: {"model": ErrorBody, "description": "the token is not an approver"},
        404: {"model": ErrorBody, "description": "unknown agent"},
        409: {"model": GateRefusal, "description": "the promotion gate refused, with every reason"},
        503: {"model": ErrorBody, "description": "Kafka did not acknowledge the decision"},
    },
)
def promote(
    namespace: Namespace,
    name: Name,
    body: PromotionRequest,
    approver: Annotated[Principal, Depends(require_approver)],
    store: Annotated[Store, Depends(get_store)],
    publisher: Annotated[Publisher, Depends(get_publisher)],
    config: Annotated[Settings, Depends(get_settings)],
) -> PromotionDecision | JSONResponse:
    state = load_state(store, find_agent(store, namespace, name))
    current = promotion_gate.current_mode(state.bundle)
    # The enforcer applies the same whole gate (readiness included) to the decision; asking it
    # here answers 409 at once.
    report = golive.assess(store, state.agent, config.audit_soak_s, body.mode, state=state)
    proof = latest_proof(store, state.agent["deployment"])
    reasons = list(promotion_gate.decide(body.mode, current, state.apd, state.open_stories, report, proof).reasons)
    deployment = state.agent["deployment"]
    if reasons:
        refusal = GateRefusal(
            detail=f"promotion of {deployment} from {current.value} to {body.mode.value} refused by the gate",
            reasons=reasons,
        )
        return JSONResponse(refusal.model_dump(), status_code=status.HTTP_409_CONFLICT)
    decision = PromotionDecision(
        deployment=deployment, mode=body.mode, approver=approver.signer, reason=body.reason, ts=utcnow()
    )
    decision = golive.record_step(
        decision,
        PROMOTIONS,
        config=config,
        publisher=publisher,
        store=store,
        kind=history.HistoryKind.PROMOTION,
        actor=approver.signer,
        reason=body.reason,
        body={
            "from": current.value,
            "to": body.mode.value,
            "rollback": _step_back(body.mode, current),
            "token": approver.name,
            "readiness": {c.id.value: c.status.value for c in report.checks},
        },
        ts=decision.ts,
    )
    log.info("%s promoted %s from %s to %s", approver.signer, deployment, current.value, body.mode.value)
    return decision


@router.post(
    "/agents/{namespace}/{name}/policy-accept",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PromotionDecision,
    summary="Accept a newer APD revision into an enforced agent's frozen policies",
    description="Approver role only. An enforce-mode policy bundle is frozen on the APD revision it was "
    "promoted on: what the profiler learns later (listed on the bundle as `pending_widening`) reaches "
    "the policies only through this call. The revision must be the latest APD revision, the agent must "
    "be in enforce mode, and the gate's checks for entering enforce must pass (complete window, no open "
    "'potential compromise' story). The decision (mode enforce, `accept_apd_revision`) is signed, "
    f"published to `{PROMOTIONS.name}` and appended to the go-live history.",
    responses={
        403: {"model": ErrorBody, "description": "the token is not an approver"},
        404: {"model": ErrorBody, "description": "unknown agent"},
        409: {"model": GateRefusal, "description": "refused, with every reason"},
        503: {"model": ErrorBody, "description": "Kafka did not acknowledge the decision, or no promotion key"},
    },
)
def accept_policy(
    namespace: Namespace,
    name: Name,
    body: PolicyAcceptRequest,
    approver: Annotated[Principal, Depends(require_approver)],
    store: Annotated[Store, Depends(get_store)],
    publisher: Annotated[Publisher, Depends(get_publisher)],
    config: Annotated[Settings, Depends(get_settings)],
) -> PromotionDecision | JSONResponse:
    state = load_state(store, find_agent(store, namespace, name))
    current = promotion_gate.current_mode(state.bundle)
    deployment = state.agent["deployment"]
    reasons: list[str] = []
    latest = state.apd.revision if state.apd else None
    if current is not EnforcementMode.ENFORCE:
        reasons.append(f"the agent is in {current.value} mode; its policies follow the latest APD, nothing to accept")
    elif body.apd_revision != latest:
        reasons.append(f"APD revision {body.apd_revision} is not the latest ({latest}); review and accept {latest}")
    else:
        # The enforcer applies the same checks (services/enforcer/domain.accept_gate).
        entering = promotion_gate.evaluate(
            EnforcementMode.ENFORCE,
            EnforcementMode.AUDIT,
            state.apd,
            state.open_stories,
            latest_proof(store, deployment),
        )
        reasons.extend(entering.reasons)
    if reasons:
        refusal = GateRefusal(
            detail=f"accepting APD revision {body.apd_revision} for {deployment} refused", reasons=reasons
        )
        return JSONResponse(refusal.model_dump(), status_code=status.HTTP_409_CONFLICT)
    decision = PromotionDecision(
        deployment=deployment,
        mode=EnforcementMode.ENFORCE,
        approver=approver.signer,
        reason=body.reason,
        ts=utcnow(),
        accept_apd_revision=body.apd_revision,
    )
    decision = golive.record_step(
        decision,
        PROMOTIONS,
        config=config,
        publisher=publisher,
        store=store,
        kind=history.HistoryKind.PROMOTION,
        actor=approver.signer,
        reason=body.reason,
        body={"from": "enforce", "to": "enforce", "accept_apd_revision": body.apd_revision, "token": approver.name},
        ts=decision.ts,
    )
    log.info("%s accepted APD revision %s into %s's policies", approver.signer, body.apd_revision, deployment)
    return decision


_RANK = {EnforcementMode.OBSERVE: 0, EnforcementMode.AUDIT: 1, EnforcementMode.ENFORCE: 2}


def _step_back(target: EnforcementMode, current: EnforcementMode) -> bool:
    return _RANK[target] < _RANK[current]
