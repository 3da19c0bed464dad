"""The enforcer's own enforce-mode bundle for the runc tests: its domain code run as the stage runs
it (the APD, audit, a proof, enforce), with a readiness report that fails nothing (the proof and
the bundle are what these tests are about; readiness has tests of its own)."""

from __future__ import annotations

from runward.core.contracts import ApdRevision, EnforcementMode, PolicyBundle, PolicyProof, PromotionDecision, utcnow
from services.enforcer.domain import apply
from services.enforcer.readiness import ReadinessReport


def enforce_bundle(apd: ApdRevision, proof: PolicyProof) -> PolicyBundle:
    now = utcnow()
    agent = apd.deployment
    state, _ = apply(None, apd, now)
    for record in (
        PromotionDecision(deployment=agent, mode=EnforcementMode.AUDIT, approver="bob", reason="r", ts=now),
        proof,
        PromotionDecision(deployment=agent, mode=EnforcementMode.ENFORCE, approver="bob", reason="r", ts=now),
    ):
        target = record.mode if isinstance(record, PromotionDecision) else state.mode
        ready = ReadinessReport(deployment=agent, target=target, mode=state.mode, computed_at=now)
        state, bundle = apply(state, record, now, ready)
    assert bundle is not None and bundle.mode is EnforcementMode.ENFORCE
    return bundle
