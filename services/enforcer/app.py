"""Enforcer: APD revisions, promotion decisions, policy proofs and attack stories -> policy bundles.

apd + promotions + proofs + attack-stories  ->  policies (NetworkPolicy, seccomp) at the promoted mode
                                                signals (a promotion or proof the API did not sign)
audit-evidence                              ->  the store (per agent, for the API and the audit soak)

Every decision passes the whole promotion gate here, readiness included: the stage reads the
agent's stored evidence (AI-BOM delta, reconciliation, waivers, stories, bundle history) off the
event loop, and `readiness_inputs.assess` + `promotion_gate.decide` judge it, so a decision the
API signed on state that has since changed is refused like one that skipped the API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from runward.core import signing
from runward.core.codec import RejectedRecord
from runward.core.config import Settings, settings
from runward.core.contracts import AuditEvidence, PolicyProof, PromotionDecision, utcnow
from runward.core.stage import Context, Output, Stage
from runward.core.store import history
from runward.core.topics import APD, ATTACK_STORIES, AUDIT_EVIDENCE, POLICIES, PROMOTIONS, PROOFS, SIGNALS
from services.enforcer import readiness, readiness_inputs
from services.enforcer.domain import EnforcerState, PromotionRefused, apply
from services.enforcer.provenance import forged_promotion_signal, forged_proof_signal
from services.enforcer.recovery import restore

# Enough to cover every story that can still hold the gate (the API reads as many).
STORY_SCAN_LIMIT = 1000


def build(config: Settings) -> Stage:
    stage = Stage(
        "enforcer",
        inputs=[APD, PROMOTIONS, PROOFS, ATTACK_STORIES, AUDIT_EVIDENCE],
        outputs=[POLICIES, SIGNALS],
        config=config,
    )
    states = stage.model_table("enforcer-state", EnforcerState)
    soak = timedelta(seconds=config.audit_soak_s)

    async def handle(record: Any, ctx: Context) -> Sequence[Output]:
        if isinstance(record, AuditEvidence):
            # Kept as it came (idempotent per evidence id); the readiness check reads it back.
            await asyncio.to_thread(stage.store.put_audit_evidence, [record])
            stage.touch_agent(record.deployment, None, record.ts)
            return []
        if isinstance(record, (PromotionDecision, PolicyProof)):
            await refuse_unsigned(stage, config, record, ctx)
        current = states.get(record.deployment)
        if current is None:
            current = await stored_state(record.deployment)
        report = None
        if isinstance(record, PromotionDecision):
            # The gate judges the decision's target readiness now, on what the store holds now.
            state_now = current or EnforcerState(deployment=record.deployment)
            evidence = await asyncio.to_thread(stored_evidence, record.deployment)
            report = readiness_inputs.assess(state_now, evidence, record.mode, utcnow(), soak)
        try:
            state, bundle = apply(current, record, utcnow(), report)
        except PromotionRefused as refused:
            # Whoever wrote the decision, the gate holds: it goes to the dead-letter topic with
            # the gate's reasons and the agent keeps its mode.
            raise RejectedRecord(str(refused)) from None
        states[record.deployment] = state
        if bundle is None:
            return []
        stage.put_artifact(bundle.deployment, "policy", bundle.revision, bundle.created_at, bundle)
        return [Output(POLICIES, bundle.deployment, bundle)]

    def stored_evidence(deployment: str) -> readiness_inputs.StoredEvidence:
        store = stage.store
        bundles = history.artifacts(store, deployment, "policy")
        since = readiness.audit_since(bundles)
        # Would-be violations since the audit stretch began spoil the soak, as the API reads them.
        audit, counts = store.audit_evidence(deployment, since=since, limit=20) if since else ([], {})
        return readiness_inputs.StoredEvidence(
            deployment=deployment,
            agents=store.agents(),
            bundles=bundles,
            audit_evidence=audit,
            audit_evidence_counts=counts,
            bom_delta=store.latest_artifact(deployment, "bom_delta"),
            reconciliation=store.latest_artifact(deployment, "reconciliation"),
            stories=store.stories(deployment, limit=STORY_SCAN_LIMIT),
            waivers=history.waivers(store, deployment),
        )

    async def stored_state(deployment: str) -> EnforcerState | None:
        """An agent the table does not know: new, or its changelog went with the broker."""
        bundle = await asyncio.to_thread(stage.store.latest_artifact, deployment, "policy")
        if bundle is None:
            return None
        apd = await asyncio.to_thread(stage.store.artifact, deployment, "apd", int(bundle["apd_revision"]))
        return restore(deployment, bundle, apd)

    stage.run(handle)
    return stage


async def refuse_unsigned(
    stage: Stage, config: Settings, record: PromotionDecision | PolicyProof, ctx: Context
) -> None:
    """A decision or proof the API did not sign: dead letter and an identity signal."""
    # Read per record: a key file written after the stage started still counts.
    key = signing.promotion_key(config)
    if isinstance(record, PromotionDecision):
        problem = signing.signature_problem(record, key)
        if problem is None:
            return
        signal = forged_promotion_signal(record, ctx.source, problem, utcnow())
        what = f"promotion of {record.deployment} to {record.mode.value}"
    else:
        problem = signing.signature_problem(record, key)
        if problem is None:
            return
        signal = forged_proof_signal(record, ctx.source, problem, utcnow())
        what = f"policy proof of {record.deployment} (APD revision {record.apd_revision})"
    await stage.publish(Output(SIGNALS, record.deployment, signal))
    raise RejectedRecord(f"{what} refused: {problem}")


def main() -> None:
    build(settings()).main()


if __name__ == "__main__":
    main()
