"""The promotion gate as a pure function, on the API's view of an agent (the store): each rule on
its own, then together. The enforcer's side is in tests/unit/test_enforcer_gate.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from runward.core.contracts import (
    ApdRevision,
    AttackStory,
    EnforcementMode,
    PolicyBundle,
    PolicyProof,
    StoryStatus,
    WindowStatus,
)
from runward.core.signing import profile_sha256
from services.enforcer.promotion_gate import GateResult, current_mode, enforce_profile, open_stories
from services.enforcer.promotion_gate import evaluate as gate_evaluate

from .support import BUNDLE_AT, NOW, apd, bundle, story

OBSERVE, AUDIT, ENFORCE = EnforcementMode.OBSERVE, EnforcementMode.AUDIT, EnforcementMode.ENFORCE
D = "shop/agent"
COMPLETE = apd(D, 3, WindowStatus.COMPLETE)


def proof_of(rev: ApdRevision, passed: bool = True) -> PolicyProof:
    unhashed = PolicyProof(
        deployment=rev.deployment,
        apd_revision=rev.revision,
        profile_sha256="",
        passed=passed,
        ran_at=NOW,
        runtime="runc 1.1.5",
        runtime_syscalls=["execve", "fstatfs"],
    )
    return unhashed.model_copy(update={"profile_sha256": profile_sha256(enforce_profile(rev, unhashed))})


def evaluate(
    target: EnforcementMode,
    latest: PolicyBundle | None,
    apd: ApdRevision | None,
    stories: Sequence[AttackStory],
    proof: PolicyProof | None = None,
) -> GateResult:
    """The gate as the API asks it: mode and open stories from the store's latest bundle."""
    return gate_evaluate(target, current_mode(latest), apd, open_stories(stories, latest), proof)


def test_no_bundle_means_observe() -> None:
    assert current_mode(None) is OBSERVE
    assert current_mode(bundle(D, 1, AUDIT)) is AUDIT


def test_observe_to_audit_with_complete_window_and_no_story_is_allowed() -> None:
    result = evaluate(AUDIT, None, COMPLETE, [])
    assert result.allowed and result.current is OBSERVE


def test_audit_to_enforce_is_allowed_with_a_passing_proof() -> None:
    assert evaluate(ENFORCE, bundle(D, 1, AUDIT), COMPLETE, [], proof_of(COMPLETE)).allowed


@pytest.mark.parametrize(
    ("proof", "detail"),
    [
        (None, ""),
        (proof_of(COMPLETE, passed=False), " (the latest proof failed: "),
        (proof_of(apd(D, 2, WindowStatus.COMPLETE)), " (the latest proof is of APD revision 2)"),
        (proof_of(COMPLETE).model_copy(update={"runtime_syscalls": ["execve"]}), " (the latest proof ran another"),
    ],
)
def test_enforce_without_a_passing_proof_of_this_profile_is_refused(proof: PolicyProof | None, detail: str) -> None:
    (reason,) = evaluate(ENFORCE, bundle(D, 1, AUDIT), COMPLETE, [], proof).reasons
    assert reason.startswith("no passing proof for APD revision 3: run `runward prove shop/agent`" + detail)


@pytest.mark.parametrize("status", [WindowStatus.LEARNING, WindowStatus.STABLE])
def test_incomplete_window_holds_promotion(status: WindowStatus) -> None:
    result = evaluate(AUDIT, None, apd(D, 2, status), [])
    assert not result.allowed
    assert result.reasons == (
        f"the observation window of APD revision 2 is {status.value}, not complete "
        f"(it ends at {apd(D, 2, status).window_ends_at.isoformat()})",
    )


def test_missing_apd_holds_promotion() -> None:
    assert evaluate(AUDIT, None, None, []).reasons == (
        "no APD baseline exists yet: the profiler has not observed this agent",
    )


def test_enforce_needs_audit_first() -> None:
    result = evaluate(ENFORCE, None, COMPLETE, [], proof_of(COMPLETE))
    assert result.reasons == ("enforce needs the agent to be in audit mode first; it is in observe",)


def test_which_stories_are_open() -> None:
    current = bundle(D, 1, OBSERVE, open_stories=["listed"])
    stories = [
        story("after", D, StoryStatus.POTENTIAL_COMPROMISE, BUNDLE_AT + timedelta(minutes=1)),
        story("before", D, StoryStatus.POTENTIAL_COMPROMISE, BUNDLE_AT - timedelta(minutes=1)),
        story("listed", D, StoryStatus.POTENTIAL_COMPROMISE, BUNDLE_AT - timedelta(hours=5)),
        story("drift", D, StoryStatus.EXPECTED_DRIFT, NOW),
    ]
    assert [s.story_id for s in open_stories(stories, current)] == ["after", "listed"]
    # Before any policy bundle exists, every potential compromise is open.
    assert [s.story_id for s in open_stories(stories, None)] == ["after", "before", "listed"]


def test_open_story_holds_promotion_and_every_reason_is_given() -> None:
    live = story("st-1", D, StoryStatus.POTENTIAL_COMPROMISE, NOW)
    result = evaluate(ENFORCE, None, apd(D, 1, WindowStatus.LEARNING), [live])
    assert len(result.reasons) == 4
    assert "learning, not complete" in result.reasons[0]
    assert result.reasons[1].startswith("attack story st-1 (severity 4")
    assert "open potential compromise" in result.reasons[1]
    assert result.reasons[2].startswith("enforce needs the agent to be in audit")
    assert result.reasons[3].startswith("no passing proof for APD revision 1")


def test_stepping_back_is_always_allowed() -> None:
    live = story("st-1", D, StoryStatus.POTENTIAL_COMPROMISE, NOW)
    learning = apd(D, 1, WindowStatus.LEARNING)
    assert evaluate(OBSERVE, bundle(D, 1, ENFORCE), learning, [live]).allowed
    assert evaluate(AUDIT, bundle(D, 1, ENFORCE), None, [live]).allowed


def test_same_mode_is_refused() -> None:
    result = evaluate(AUDIT, bundle(D, 1, AUDIT), COMPLETE, [])
    assert result.reasons == ("the agent is already in audit mode",)
