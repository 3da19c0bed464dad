"""The enforcer applies the promotion gate to every decision it consumes: a refused decision
changes nothing and says why; an allowed one yields the bundle at the new mode."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runward.core.contracts import (
    ApdRevision,
    AttackStory,
    EnforcementMode,
    PolicyProof,
    PromotionDecision,
    WindowStatus,
)
from runward.core.signing import profile_sha256
from services.enforcer.domain import EnforcerState, PromotionRefused, apply
from services.enforcer.policies import seccomp_profile

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
    return AttackStory(
        story_id=story_id,
        deployment=D,
        version=1,
        first_seen=T,
        last_seen=T + timedelta(minutes=5),
        status=status,  # type: ignore[arg-type]
        severity=4,
        surfaces=[],
        techniques=[],
        narrative=[],
        signals=[],
        ocsf={},
    )


RUNTIME = ["execve", "fstatfs", "getdents64"]


def proof(rev: ApdRevision, passed: bool = True, runtime: list[str] | None = None) -> PolicyProof:
    """A proof of `rev`'s enforce profile with the runtime's syscalls (hashed as the prover does)."""
    runtime = RUNTIME if runtime is None else runtime
    profile = seccomp_profile(rev, ENFORCE, runtime)
    return PolicyProof(
        deployment=D,
        apd_revision=rev.revision,
        profile_sha256=profile_sha256(profile),
        passed=passed,
        ran_at=T,
        runtime="runc 1.1.5",
        runtime_syscalls=runtime,
        summary="passed" if passed else "failed: would be refused: unshare",
    )


def decide(mode: EnforcementMode) -> PromotionDecision:
    return PromotionDecision(deployment=D, mode=mode, approver="lead", reason="r", ts=T)


def refused(state: EnforcerState | None, mode: EnforcementMode) -> tuple[str, ...]:
    with pytest.raises(PromotionRefused) as caught:
        apply(state, decide(mode), T)
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
    state, bundle = apply(state, decide(AUDIT), T)
    assert bundle is not None and bundle.mode is AUDIT and state.mode is AUDIT


def test_enforce_needs_audit_first_and_same_mode_is_refused() -> None:
    state, _ = apply(None, apd(1, WindowStatus.COMPLETE), T)
    state, _ = apply(state, proof(apd(1, WindowStatus.COMPLETE)), T)
    assert refused(state, ENFORCE) == ("enforce needs the agent to be in audit mode first; it is in observe",)
    state, _ = apply(state, decide(AUDIT), T)
    assert refused(state, AUDIT) == ("the agent is already in audit mode",)
    state, bundle = apply(state, decide(ENFORCE), T)
    assert bundle is not None and bundle.mode is ENFORCE


def test_enforce_needs_a_passing_proof_of_the_profile_it_would_emit() -> None:
    first = apd(1, WindowStatus.COMPLETE)
    state, _ = apply(None, first, T)
    state, _ = apply(state, decide(AUDIT), T)
    hint = "no passing proof for APD revision 1: run `runward prove agents/bot`"
    assert refused(state, ENFORCE) == (hint,)
    failed, _ = apply(state, proof(first, passed=False), T)
    assert refused(failed, ENFORCE) == (hint + " (the latest proof failed: failed: would be refused: unshare)",)
    forged_hash = proof(first).model_copy(update={"profile_sha256": "0" * 64, "ran_at": T + timedelta(seconds=1)})
    other, _ = apply(state, forged_hash, T)
    assert refused(other, ENFORCE)[0].startswith(hint + " (the latest proof ran another seccomp profile")
    newer = apd(2, WindowStatus.COMPLETE)
    stale, _ = apply(state, proof(first), T)
    stale, _ = apply(stale, newer, T)
    assert refused(stale, ENFORCE) == (
        "no passing proof for APD revision 2: run `runward prove agents/bot` (the latest proof is of APD revision 1)",
    )
    state, bundle = apply(stale, proof(newer).model_copy(update={"ran_at": T + timedelta(seconds=2)}), T)
    assert bundle is not None and bundle.proof is not None and bundle.proof.apd_revision == 2
    state, bundle = apply(state, decide(ENFORCE), T)
    assert bundle is not None and bundle.mode is ENFORCE and bundle.proof is not None
    # The enforce profile is the proven one: the runtime's needs are in it, and its hash is the proof's.
    allowed = bundle.seccomp_profile["syscalls"][0]["names"]
    assert set(RUNTIME) <= set(allowed) and "read" in allowed
    assert profile_sha256(bundle.seccomp_profile) == bundle.proof.profile_sha256


def test_stepping_back_is_allowed_with_an_open_story() -> None:
    state, _ = apply(None, apd(1, WindowStatus.COMPLETE), T)
    state, _ = apply(state, decide(AUDIT), T)
    state, _ = apply(state, story("potential compromise"), T)
    state, bundle = apply(state, decide(OBSERVE), T)
    assert bundle is not None and bundle.mode is OBSERVE and bundle.open_stories == ["st-1"]


def test_refusal_message_names_the_decision_and_every_reason() -> None:
    with pytest.raises(PromotionRefused) as caught:
        apply(None, decide(ENFORCE), T)
    message = str(caught.value)
    assert message.startswith(
        f"promotion of {D} from observe to enforce (approver lead) refused by the promotion gate: "
    )
    assert "no APD baseline" in message and "enforce needs the agent to be in audit" in message


def test_in_enforce_a_new_apd_revision_waits_for_its_proof() -> None:
    first, second = apd(1, WindowStatus.COMPLETE), apd(2, WindowStatus.COMPLETE)
    state, _ = apply(None, first, T)
    state, _ = apply(state, decide(AUDIT), T)
    state, _ = apply(state, proof(first), T)
    state, enforced = apply(state, decide(ENFORCE), T)
    assert enforced is not None and enforced.mode is ENFORCE
    # No enforce bundle for an unproven profile: the proven one stays in force.
    state, bundle = apply(state, second, T)
    assert bundle is None and state.revision == enforced.revision
    state, bundle = apply(state, proof(second).model_copy(update={"ran_at": T + timedelta(seconds=1)}), T)
    assert bundle is not None and bundle.mode is ENFORCE and bundle.apd_revision == 2
    assert bundle.proof is not None and bundle.proof.apd_revision == 2
    # Stepping back never waits for a proof.
    state, _ = apply(state, apd(3, WindowStatus.COMPLETE), T)
    state, bundle = apply(state, decide(AUDIT), T)
    assert bundle is not None and bundle.mode is AUDIT and bundle.apd_revision == 3
