"""Enforcer: APD revisions, promotion decisions, policy proofs and attack stories -> policy bundles.

apd + promotions + proofs + attack-stories  ->  policies (NetworkPolicy, seccomp) at the promoted mode
                                                signals (a promotion or proof the API did not sign)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from runward.core import signing
from runward.core.codec import RejectedRecord
from runward.core.config import Settings, settings
from runward.core.contracts import PolicyProof, PromotionDecision, utcnow
from runward.core.stage import Context, Output, Stage
from runward.core.topics import APD, ATTACK_STORIES, POLICIES, PROMOTIONS, PROOFS, SIGNALS
from services.enforcer.domain import EnforcerState, PromotionRefused, apply
from services.enforcer.provenance import forged_promotion_signal, forged_proof_signal
from services.enforcer.recovery import restore


def build(config: Settings) -> Stage:
    stage = Stage(
        "enforcer", inputs=[APD, PROMOTIONS, PROOFS, ATTACK_STORIES], outputs=[POLICIES, SIGNALS], config=config
    )
    states = stage.model_table("enforcer-state", EnforcerState)

    async def handle(record: Any, ctx: Context) -> Sequence[Output]:
        if isinstance(record, PromotionDecision):
            # Read per decision: a key file written after the stage started still counts.
            problem = signing.signature_problem(record, signing.promotion_key(config))
            if problem is not None:
                signal = forged_promotion_signal(record, ctx.source, problem, utcnow())
                await stage.publish(Output(SIGNALS, record.deployment, signal))
                raise RejectedRecord(f"promotion of {record.deployment} to {record.mode.value} refused: {problem}")
        if isinstance(record, PolicyProof):
            problem = signing.signature_problem(record, signing.promotion_key(config))
            if problem is not None:
                signal = forged_proof_signal(record, ctx.source, problem, utcnow())
                await stage.publish(Output(SIGNALS, record.deployment, signal))
                raise RejectedRecord(
                    f"policy proof of {record.deployment} (APD revision {record.apd_revision}) refused: {problem}"
                )
        current = states.get(record.deployment)
        if current is None:
            current = await stored_state(record.deployment)
        try:
            state, bundle = apply(current, record, utcnow())
        except PromotionRefused as refused:
            # Whoever wrote the decision, the gate holds: it goes to the dead-letter topic with
            # the gate's reasons and the agent keeps its mode.
            raise RejectedRecord(str(refused)) from None
        states[record.deployment] = state
        if bundle is None:
            return []
        stage.put_artifact(bundle.deployment, "policy", bundle.revision, bundle.created_at, bundle)
        return [Output(POLICIES, bundle.deployment, bundle)]

    async def stored_state(deployment: str) -> EnforcerState | None:
        """An agent the table does not know: new, or its changelog went with the broker."""
        bundle = await asyncio.to_thread(stage.store.latest_artifact, deployment, "policy")
        if bundle is None:
            return None
        apd = await asyncio.to_thread(stage.store.artifact, deployment, "apd", int(bundle["apd_revision"]))
        return restore(deployment, bundle, apd)

    stage.run(handle)
    return stage


def main() -> None:
    build(settings()).main()


if __name__ == "__main__":
    main()
