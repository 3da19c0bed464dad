"""Frozen once promoted (an enforce-mode bundle changes only when an approver accepts a change)
and promoted with the Deployment (a rollout under an enforced agent runs in audit under the
previous policies until proven and promoted again)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from runward.core import signing
from runward.core.contracts import ApdRevision, EnforcementMode, PodTemplateRevision, PromotionDecision, WindowStatus
from services.enforcer.domain import EnforcerState, PromotionRefused, apply
from services.enforcer.readiness import ReadinessReport
from services.enforcer.recovery import restore
from tests.enforcer.proofs import proof_of

T = datetime(2026, 1, 9, tzinfo=timezone.utc)
D = "agents/bot"
SELECTOR = {"matchLabels": {"app.kubernetes.io/name": "bot"}}
V1 = PodTemplateRevision(template_hash="sha256:" + "1" * 64, pod_template_hash="7d9f8c6b5", image_digests={})
V2 = PodTemplateRevision(template_hash="sha256:" + "2" * 64, pod_template_hash="5c4b7f9d8", image_digests={})
OPENAI = "egress:api.openai.com:443/tcp"
PASTE = "egress:paste.example:443/tcp"


def apd(
    revision: int, egress: list[str], pending: list[str] | None = None, rev: PodTemplateRevision = V1
) -> ApdRevision:
    return ApdRevision(
        deployment=D,
        revision=revision,
        created_at=T,
        autonomy="low",
        window_started_at=T,
        window_ends_at=T,
        window_status=WindowStatus.COMPLETE,
        behaviours={"egress": egress, "syscalls": ["syscall:read"]},
        pending={"egress": pending} if pending else {},
        pod_selector=SELECTOR,
        deployment_revision=rev,
    )


def decide(mode: EnforcementMode, accept: int | None = None) -> PromotionDecision:
    return PromotionDecision(deployment=D, mode=mode, approver="lead", reason="r", ts=T, accept_apd_revision=accept)


def ready(mode: EnforcementMode) -> ReadinessReport:
    """A readiness report with nothing failing: these tests are about freezing, not the gate."""
    return ReadinessReport(deployment=D, target=mode, mode=EnforcementMode.AUDIT, computed_at=T)


def enforced() -> EnforcerState:
    state, _ = apply(None, apd(1, [OPENAI]), T)
    state, _ = apply(state, decide(EnforcementMode.AUDIT), T, ready(EnforcementMode.AUDIT))
    state, _ = apply(state, proof_of(apd(1, [OPENAI])), T)
    state, bundle = apply(state, decide(EnforcementMode.ENFORCE), T, ready(EnforcementMode.ENFORCE))
    assert bundle and bundle.mode is EnforcementMode.ENFORCE and bundle.apd_revision == 1
    assert bundle.deployment_revision == V1
    return state


def fqdns(bundle: object) -> list[str]:
    cilium = getattr(bundle, "cilium_network_policy")  # noqa: B009
    return [m["matchName"] for r in cilium["spec"]["egress"] for m in r.get("toFQDNs", [])]


def test_an_enforce_bundle_does_not_widen_on_a_new_apd_revision() -> None:
    state, bundle = apply(enforced(), apd(2, [OPENAI, PASTE], pending=["egress:drift.example:443/tcp"]), T)
    assert bundle and bundle.mode is EnforcementMode.ENFORCE
    assert bundle.apd_revision == 1 and bundle.latest_apd_revision == 2
    assert bundle.egress_allowlist == ["api.openai.com:443/tcp"] and fqdns(bundle) == ["api.openai.com"]
    assert bundle.pending_widening == {"egress": ["egress:drift.example:443/tcp", PASTE]}


def test_observe_and_audit_follow_the_latest_apd_but_never_its_pending_drift() -> None:
    state, _ = apply(None, apd(1, [OPENAI]), T)
    state, _ = apply(state, decide(EnforcementMode.AUDIT), T, ready(EnforcementMode.AUDIT))
    state, bundle = apply(state, apd(2, [OPENAI, PASTE], pending=["egress:drift.example:443/tcp"]), T)
    assert bundle and bundle.apd_revision == 2 and bundle.latest_apd_revision == 2
    assert fqdns(bundle) == ["api.openai.com", "paste.example"]
    assert "drift.example" not in str(bundle.calico_policy) and "drift.example" not in str(bundle.egress_allowlist)
    assert bundle.pending_widening == {"egress": ["egress:drift.example:443/tcp"]}


def test_an_approvers_accept_moves_the_frozen_revision() -> None:
    state, _ = apply(enforced(), apd(2, [OPENAI, PASTE]), T)
    with pytest.raises(PromotionRefused, match="no passing proof for APD revision 2"):
        apply(state, decide(EnforcementMode.ENFORCE, accept=2), T)
    state, _ = apply(state, proof_of(apd(2, [OPENAI, PASTE])), T)
    state, bundle = apply(state, decide(EnforcementMode.ENFORCE, accept=2), T)
    assert bundle and bundle.mode is EnforcementMode.ENFORCE and bundle.apd_revision == 2
    assert fqdns(bundle) == ["api.openai.com", "paste.example"] and bundle.pending_widening == {}
    # Frozen again on revision 2.
    _, later = apply(state, apd(3, [OPENAI, PASTE, "egress:more.example:443/tcp"]), T)
    assert later and later.apd_revision == 2 and later.pending_widening == {"egress": ["egress:more.example:443/tcp"]}


def test_accepting_a_revision_that_is_not_the_latest_or_outside_enforce_is_refused() -> None:
    state, _ = apply(enforced(), apd(2, [OPENAI, PASTE]), T)
    state, _ = apply(state, apd(3, [OPENAI, PASTE, "egress:more.example:443/tcp"]), T)
    with pytest.raises(PromotionRefused, match="APD revision 2 is not the latest \\(3\\); review and accept 3"):
        apply(state, decide(EnforcementMode.ENFORCE, accept=2), T)
    audit, _ = apply(None, apd(1, [OPENAI]), T)
    audit, _ = apply(audit, decide(EnforcementMode.AUDIT), T, ready(EnforcementMode.AUDIT))
    with pytest.raises(PromotionRefused, match="applies to an agent in enforce mode \\(it is in audit\\)"):
        apply(audit, decide(EnforcementMode.ENFORCE, accept=1), T)


def test_a_rollout_under_enforce_runs_in_audit_under_the_previous_policies_until_promoted_again() -> None:
    state, bundle = apply(enforced(), apd(2, [OPENAI], pending=[PASTE], rev=V2), T)
    assert bundle and bundle.mode is EnforcementMode.AUDIT
    assert bundle.mode_reason and "5c4b7f9d8 rolled out" in bundle.mode_reason and "7d9f8c6b5" in bundle.mode_reason
    assert bundle.apd_revision == 1 and bundle.deployment_revision == V1  # still the previous bundle's policies
    assert (
        bundle.network_policy is None and bundle.calico_policy and bundle.calico_policy["kind"] == "StagedNetworkPolicy"
    )
    assert bundle.seccomp_profile["defaultAction"] == "SCMP_ACT_LOG"
    # More learning of the new revision does not widen it either.
    state, bundle = apply(state, apd(3, [OPENAI, PASTE], rev=V2), T)
    assert bundle and bundle.apd_revision == 1 and bundle.pending_widening == {"egress": [PASTE]}
    # Proven and promoted again: frozen on the new revision.
    state, _ = apply(state, proof_of(apd(3, [OPENAI, PASTE], rev=V2)), T)
    state, bundle = apply(state, decide(EnforcementMode.ENFORCE), T, ready(EnforcementMode.ENFORCE))
    assert bundle and bundle.mode is EnforcementMode.ENFORCE and bundle.mode_reason is None
    assert bundle.apd_revision == 3 and bundle.deployment_revision == V2 and "paste.example" in fqdns(bundle)


def test_a_revision_becoming_known_or_refined_is_no_rollout() -> None:
    refined = V1.model_copy(update={"image_digests": {"bot": ["sha256:" + "a" * 64]}})
    state, bundle = apply(enforced(), apd(2, [OPENAI], rev=refined), T)
    assert bundle and bundle.mode is EnforcementMode.ENFORCE and bundle.mode_reason is None


def test_the_frozen_state_survives_a_restart_from_the_store() -> None:
    state, bundle = apply(enforced(), apd(2, [OPENAI], rev=V2), T)
    assert bundle
    stored = bundle.model_dump(mode="json")
    restored = restore(D, stored, apd(1, [OPENAI]).model_dump(mode="json"))
    assert restored and restored.mode is EnforcementMode.AUDIT and restored.frozen and restored.frozen.revision == 1
    _, after = apply(restored, apd(3, [OPENAI, PASTE], rev=V2), T)
    assert after and after.apd_revision == 1 and after.mode_reason == bundle.mode_reason


def test_an_accept_is_signed_like_any_decision_and_old_signatures_still_verify() -> None:
    key = b"k" * 40
    plain = signing.sign(decide(EnforcementMode.ENFORCE), key)
    assert '"accept_apd_revision"' not in signing.canonical(plain).decode()
    accept = signing.sign(decide(EnforcementMode.ENFORCE, accept=2), key)
    assert signing.signature_problem(accept, key) is None
    tampered = accept.model_copy(update={"accept_apd_revision": 3})
    assert signing.signature_problem(tampered, key) is not None
