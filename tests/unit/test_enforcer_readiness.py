"""The enforcer's own readiness judgement of a promotion decision (services.enforcer.readiness_inputs):
its state plus the stored evidence, through the same checks and the same gate the API uses."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from runward.core.contracts import ApdRevision, EnforcementMode, PromotionDecision, WindowStatus
from services.enforcer import promotion_gate, readiness_inputs
from services.enforcer.domain import EnforcerState, PromotionRefused, apply, gate
from services.enforcer.readiness import CheckId, CheckStatus
from tests.enforcer.proofs import proof_of

T = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
D = "shop/bot"
SOAK = timedelta(hours=1)
AUDIT, ENFORCE = EnforcementMode.AUDIT, EnforcementMode.ENFORCE


def audit_state() -> EnforcerState:
    apd = ApdRevision(
        deployment=D,
        revision=1,
        created_at=T - timedelta(days=1),
        autonomy="low",
        window_started_at=T - timedelta(days=4),
        window_ends_at=T - timedelta(days=1),
        window_status=WindowStatus.COMPLETE,
        behaviours={"egress": ["egress:api.openai.com:443/tcp"]},
    )
    return EnforcerState(deployment=D, revision=2, apd=apd, mode=AUDIT, proof=proof_of(apd))


def agent(deployment: str, sa: str) -> dict[str, Any]:
    ns, _, name = deployment.partition("/")
    return {"deployment": deployment, "namespace": ns, "name": name, "service_account": sa}


def bundle(revision: int, mode: str, at: datetime, proof: bool = True) -> dict[str, Any]:
    return {
        "revision": revision,
        "mode": mode,
        "created_at": at.isoformat(),
        "proof": {"passed": True, "status": "passed"} if proof else None,
    }


def evidence(**changes: Any) -> readiness_inputs.StoredEvidence:
    """Everything a go-live needs, stored: own SA, soaked two hours, reviewed, reconciled, proven."""
    base: dict[str, Any] = {
        "deployment": D,
        "agents": [agent(D, "bot-sa"), agent("shop/other", "other-sa")],
        "bundles": [bundle(1, "observe", T - timedelta(days=1)), bundle(2, "audit", T - timedelta(hours=2))],
        "bom_delta": {"revision": 1, "findings": []},
        "reconciliation": {"kubernetes": {"unused_count": 0}},
        "stories": [],
        "waivers": [],
    }
    base.update(changes)
    return readiness_inputs.StoredEvidence(**base)


def decide(state: EnforcerState, stored: readiness_inputs.StoredEvidence) -> tuple[str, ...]:
    report = readiness_inputs.assess(state, stored, ENFORCE, T, SOAK)
    decision = PromotionDecision(deployment=D, mode=ENFORCE, approver="ada", reason="go live", ts=T)
    return gate(state, decision, report).reasons


def test_everything_in_order_passes_and_the_decision_moves_the_agent() -> None:
    state = audit_state()
    report = readiness_inputs.assess(state, evidence(), ENFORCE, T, SOAK)
    assert report.ready, [c for c in report.blocking]
    decision = PromotionDecision(deployment=D, mode=ENFORCE, approver="ada", reason="go live", ts=T)
    new, out = apply(state, decision, T, report)
    assert new.mode is ENFORCE and out is not None and out.mode is ENFORCE


def test_a_shared_service_account_refuses_until_it_is_waived() -> None:
    shared = [agent(D, "bot-sa"), agent("shop/other", "bot-sa")]
    (reason,) = decide(audit_state(), evidence(agents=shared))
    assert reason.startswith("readiness check service_account fails: ServiceAccount shop/bot-sa is shared")
    waiver = {"check": "service_account", "actor": "Ada", "reason": "owned", "created_at": T - timedelta(hours=1)}
    assert decide(audit_state(), evidence(agents=shared, waivers=[waiver])) == ()


def test_an_agent_the_store_never_saw_has_no_known_service_account() -> None:
    (reason,) = decide(audit_state(), evidence(agents=[agent("shop/other", "other-sa")]))
    assert reason == (
        "readiness check service_account fails: the pipeline has not seen shop/bot run: its ServiceAccount is unknown"
    )


def test_no_soak_refuses_whatever_the_signature() -> None:
    young = [bundle(1, "observe", T - timedelta(days=1)), bundle(2, "audit", T - timedelta(minutes=5))]
    (reason,) = decide(audit_state(), evidence(bundles=young))
    assert reason.startswith("readiness check audit_soak fails: in audit since ")
    assert "5 min 0 s of 1.0 h soaked" in reason


def test_the_store_lagging_behind_the_enforcers_audit_mode_fails_closed() -> None:
    (reason,) = decide(audit_state(), evidence(bundles=[bundle(1, "observe", T - timedelta(days=1))]))
    assert "audit_soak fails" in reason and "no audit soak has started" in reason


def test_an_unproven_bundle_refuses() -> None:
    # Policies proven is the gate's own rule 6 (the enforcer's latest proof of this APD revision's
    # profile); readiness shows the check but does not state it twice.
    unproven = [bundle(1, "observe", T - timedelta(days=1)), bundle(2, "audit", T - timedelta(hours=2), proof=False)]
    state = audit_state()
    state.proof = None
    (reason,) = decide(state, evidence(bundles=unproven))
    assert reason == "no passing proof for APD revision 1: run `runward prove shop/bot`"
    report = readiness_inputs.assess(state, evidence(bundles=unproven), ENFORCE, T, SOAK)
    assert next(c for c in report.checks if c.id is CheckId.POLICIES_PROVEN).status is CheckStatus.FAIL


def test_a_story_the_enforcer_holds_spoils_the_soak_even_before_the_store_has_it() -> None:
    state = audit_state()
    state.open_stories = ["st-9"]
    state.story_holds = {"st-9": promotion_gate_hold("st-9", T - timedelta(minutes=30))}
    report = readiness_inputs.assess(state, evidence(), ENFORCE, T, SOAK)
    soak = next(c for c in report.checks if c.id is CheckId.AUDIT_SOAK)
    assert soak.status is CheckStatus.FAIL and "st-9" in soak.evidence
    reasons = decide(state, evidence())
    assert any("attack story st-9" in r for r in reasons)  # the gate's own rule 3
    assert any(r.startswith("readiness check audit_soak fails") for r in reasons)
    with pytest.raises(PromotionRefused):
        apply(state, PromotionDecision(deployment=D, mode=ENFORCE, approver="a", reason="r", ts=T), T, report)


def promotion_gate_hold(story_id: str, seen: datetime) -> Any:
    from services.enforcer.domain import StoryHold

    return StoryHold(story_id=story_id, severity=5, last_seen=seen)


def test_api_and_enforcer_ask_the_same_gate() -> None:
    # Both call promotion_gate.decide; readiness of None (not assessed) refuses going up.
    state = audit_state()
    result = promotion_gate.decide(ENFORCE, AUDIT, state.apd, [], None, state.proof)
    assert result.reasons == ("readiness of the agent for enforce was not assessed; the gate does not promote blind",)
