"""The enforcer applies the promotion gate to every decision it consumes: a refused decision
changes nothing and says why; an allowed one yields the bundle at the new mode."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runward.core.contracts import ApdRevision, AttackStory, EnforcementMode, PromotionDecision, WindowStatus
from runward.core.signing import profile_sha256
from services.enforcer.domain import EnforcerState, PromotionRefused, apply
from services.enforcer.readiness import ReadinessReport
from tests.enforcer.proofs import proof_of
from tests.enforcer.stories import story_of

T = datetime(2026, 1, 9, tzinfo=timezone.utc)
D = "agents/bot"
OBSERVE, AUDIT, ENFORCE = EnforcementMode.OBSERVE, EnforcementMode.AUDIT, EnforcementMode.ENFORCE


def apd(revision: int, status: WindowStatus) -> ApdRevision:
    return ApdRevision(
        deployment=D,
        revision=revision,
        created_at=T,
        autonomy="low",
        window_started_at=T - timedelta(days=3),
        window_ends_at=T,
        window_status=status,
        behaviours={"egress": ["egress:api.openai.com:443/tcp"], "syscalls": ["syscall:read"]},
    )


def story(status: str, story_id: str = "st-1") -> AttackStory:
    return story_of(D, story_id, status, T, T + timedelta(minutes=5))


def decide(mode: EnforcementMode) -> PromotionDecision:
    return PromotionDecision(deployment=D, mode=mode, approver="lead", reason="r", ts=T)


def ready(mode: EnforcementMode) -> ReadinessReport:
    """A readiness report with nothing failing: these tests are about rules 1-4 of the gate."""
    return ReadinessReport(deployment=D, target=mode, mode=OBSERVE, computed_at=T)


def refused(state: EnforcerState | None, mode: EnforcementMode) -> tuple[str, ...]:
    with pytest.raises(PromotionRefused) as caught:
        apply(state, decide(mode), T, ready(mode))
    return caught.value.result.reasons


def test_promotion_before_any_apd_is_refused() -> None:
    assert refused(None, AUDIT) == ("no APD baseline exists yet: the profiler has not observed this agent",)


def test_incomplete_window_is_refused_and_the_state_is_unchanged() -> None:
    state, _ = apply(None, apd(1, WindowStatus.LEARNING), T)
    before = state.model_dump()
    reasons = refused(state, AUDIT)
    assert reasons == (
        f"the observation window of APD revision 1 is learning, not complete (it ends at {T.isoformat()})",
    )
    assert state.model_dump() == before and state.mode is OBSERVE


def test_open_compromise_holds_the_gate_until_the_story_turns_out_to_be_drift() -> None:
    state, _ = apply(None, apd(1, WindowStatus.COMPLETE), T)
    state, _ = apply(state, story("potential compromise"), T)
    (reason,) = refused(state, AUDIT)
    late = (T + timedelta(minutes=5)).isoformat()
    assert reason == f"attack story st-1 (severity 4, last seen {late}) is an open potential compromise"
    state, _ = apply(state, story("expected drift, deployment correlated"), T)
    state, bundle = apply(state, decide(AUDIT), T, ready(AUDIT))
    assert bundle is not None and bundle.mode is AUDIT and state.mode is AUDIT


def test_enforce_needs_audit_first_and_same_mode_is_refused() -> None:
    state, _ = apply(None, apd(1, WindowStatus.COMPLETE), T)
    state, _ = apply(state, proof_of(apd(1, WindowStatus.COMPLETE)), T)
    assert refused(state, ENFORCE) == ("enforce needs the agent to be in audit mode first; it is in observe",)
    state, _ = apply(state, decide(AUDIT), T, ready(AUDIT))
    assert refused(state, AUDIT) == ("the agent is already in audit mode",)
    state, bundle = apply(state, decide(ENFORCE), T, ready(ENFORCE))
    assert bundle is not None and bundle.mode is ENFORCE


def test_enforce_needs_a_passing_proof_of_the_profile_it_would_emit() -> None:
    first = apd(1, WindowStatus.COMPLETE)
    state, _ = apply(None, first, T)
    state, _ = apply(state, decide(AUDIT), T, ready(AUDIT))
    hint = "no passing proof for APD revision 1: run `runward prove agents/bot`"

    def refused_enforce(at: EnforcerState) -> tuple[str, ...]:
        with pytest.raises(PromotionRefused) as caught:
            apply(at, decide(ENFORCE), T, ready(ENFORCE))
        return caught.value.result.reasons

    assert refused_enforce(state) == (hint,)
    failed, _ = apply(state, proof_of(first, passed=False), T)
    assert refused_enforce(failed) == (hint + " (the latest proof failed: failed: would be refused: unshare)",)
    other, _ = apply(state, proof_of(first).model_copy(update={"profile_sha256": "0" * 64}), T)
    assert refused_enforce(other)[0].startswith(hint + " (the latest proof ran another seccomp profile")
    stale, _ = apply(state, proof_of(first), T)
    stale, _ = apply(stale, apd(2, WindowStatus.COMPLETE), T)
    assert refused_enforce(stale) == (
        "no passing proof for APD revision 2: run `runward prove agents/bot` (the latest proof is of APD revision 1)",
    )
    state, bundle = apply(stale, proof_of(apd(2, WindowStatus.COMPLETE)), T)
    assert bundle is not None and bundle.proof is not None and bundle.proof.apd_revision == 2
    state, bundle = apply(state, decide(ENFORCE), T, ready(ENFORCE))
    assert bundle is not None and bundle.mode is ENFORCE and bundle.proof is not None
    # The enforce profile is the proven one: the runtime's needs are in it, and its hash is the proof's.
    allowed = bundle.seccomp_profile["syscalls"][0]["names"]
    assert {"execve", "fstatfs", "read"} <= set(allowed)
    assert profile_sha256(bundle.seccomp_profile) == bundle.proof.profile_sha256


def test_stepping_back_is_allowed_with_an_open_story() -> None:
    state, _ = apply(None, apd(1, WindowStatus.COMPLETE), T)
    state, _ = apply(state, decide(AUDIT), T, ready(AUDIT))
    state, _ = apply(state, story("potential compromise"), T)
    state, bundle = apply(state, decide(OBSERVE), T, ready(OBSERVE))
    assert bundle is not None and bundle.mode is OBSERVE and bundle.open_stories == ["st-1"]


def test_refusal_message_names_the_decision_and_every_reason() -> None:
    with pytest.raises(PromotionRefused) as caught:
        apply(None, decide(ENFORCE), T, ready(ENFORCE))
    message = str(caught.value)
    assert message.startswith(
        f"promotion of {D} from observe to enforce (approver lead) refused by the promotion gate: "
    )
    assert "no APD baseline" in message and "enforce needs the agent to be in audit" in message


def test_going_up_without_a_readiness_report_is_refused_and_stepping_back_needs_none() -> None:
    state, _ = apply(None, apd(1, WindowStatus.COMPLETE), T)
    with pytest.raises(PromotionRefused) as caught:
        apply(state, decide(AUDIT), T)
    assert caught.value.result.reasons == (
        "readiness of the agent for audit was not assessed; the gate does not promote blind",
    )
    state, _ = apply(state, decide(AUDIT), T, ready(AUDIT))
    state, bundle = apply(state, decide(OBSERVE), T)
    assert bundle is not None and bundle.mode is OBSERVE
