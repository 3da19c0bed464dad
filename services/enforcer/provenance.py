"""A promotion decision (or policy proof) the API did not sign is an attack on the enforcer.

Whoever can write to `runward.promotions` without the API's key is using an identity it should not
have (a leaked Kafka credential, a compromised producer): the enforcer refuses the record and
raises this identity-surface signal so the correlator tells it as an attack story.
"""

from __future__ import annotations

from datetime import datetime

from runward.core.contracts import PolicyProof, PromotionDecision, Signal, SourceRef, Surface
from runward.core.techniques import STORED_DATA_MANIPULATION


def forged_promotion_signal(decision: PromotionDecision, source: SourceRef, problem: str, now: datetime) -> Signal:
    where = f"{source.topic}[{source.partition}]@{source.offset}"
    return Signal(
        signal_id=f"promotion-unsigned:{where}",
        deployment=decision.deployment,
        ts=now,
        surface=Surface.IDENTITY,
        title=f"promotion to {decision.mode.value} not made by the API (claimed approver {decision.approver!r})",
        techniques=[STORED_DATA_MANIPULATION],
        severity=4,
        evidence={
            "problem": problem,
            "mode": decision.mode.value,
            "claimed_approver": decision.approver,
            "claimed_reason": decision.reason,
            "record": where,
        },
        source_event=where,
    )


def forged_proof_signal(proof: PolicyProof, source: SourceRef, problem: str, now: datetime) -> Signal:
    """A policy proof the API did not sign: a way into enforce with a profile nobody ran."""
    where = f"{source.topic}[{source.partition}]@{source.offset}"
    return Signal(
        signal_id=f"proof-unsigned:{where}",
        deployment=proof.deployment,
        ts=now,
        surface=Surface.IDENTITY,
        title=f"policy proof of APD revision {proof.apd_revision} not made by the API "
        f"(claimed prover {proof.prover!r})",
        techniques=[STORED_DATA_MANIPULATION],
        severity=4,
        evidence={
            "problem": problem,
            "claimed_passed": proof.passed,
            "claimed_prover": proof.prover,
            "profile_sha256": proof.profile_sha256,
            "record": where,
        },
        source_event=where,
    )
