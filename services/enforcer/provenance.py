"""A promotion decision the API did not sign is an attack on the enforcer, not a decision.

Whoever can write to `runward.promotions` without the API's key is using an identity it should not
have (a leaked Kafka credential, a compromised producer): the enforcer refuses the record and
raises this identity-surface signal so the correlator tells it as an attack story.
"""

from __future__ import annotations

from datetime import datetime

from runward.core.contracts import PromotionDecision, Signal, SourceRef, Surface
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
