"""Enforcer: APD revisions, promotion decisions and attack stories -> policy bundles.

apd + promotions + attack-stories  ->  policies (NetworkPolicy, seccomp) at the promoted mode
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runward.core.codec import RejectedRecord
from runward.core.config import Settings, settings
from runward.core.contracts import utcnow
from runward.core.stage import Context, Output, Stage
from runward.core.topics import APD, ATTACK_STORIES, POLICIES, PROMOTIONS
from services.enforcer.domain import EnforcerState, PromotionRefused, apply


def build(config: Settings) -> Stage:
    stage = Stage("enforcer", inputs=[APD, PROMOTIONS, ATTACK_STORIES], outputs=[POLICIES], config=config)
    states = stage.model_table("enforcer-state", EnforcerState)

    async def handle(record: Any, ctx: Context) -> Sequence[Output]:
        try:
            state, bundle = apply(states.get(record.deployment), record, utcnow())
        except PromotionRefused as refused:
            # Whoever wrote the decision, the gate holds: it goes to the dead-letter topic with
            # the gate's reasons and the agent keeps its mode.
            raise RejectedRecord(str(refused)) from None
        states[record.deployment] = state
        if bundle is None:
            return []
        stage.put_artifact(bundle.deployment, "policy", bundle.revision, bundle.created_at, bundle)
        return [Output(POLICIES, bundle.deployment, bundle)]

    stage.run(handle)
    return stage


def main() -> None:
    build(settings()).main()


if __name__ == "__main__":
    main()
