"""Enforcer: APD revisions, promotion decisions and attack stories -> policy bundles.

apd + promotions + attack-stories  ->  policies (NetworkPolicy, seccomp) at the promoted mode
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from runward.core.contracts import utcnow
from runward.core.stage import Context, Output, Stage
from runward.core.topics import APD, ATTACK_STORIES, POLICIES, PROMOTIONS
from services.enforcer.domain import EnforcerState, apply

stage = Stage("enforcer", inputs=[APD, PROMOTIONS, ATTACK_STORIES], outputs=[POLICIES])
app = stage.app
states = stage.table("enforcer-state")


async def handle(record: Any, ctx: Context) -> Sequence[Output]:
    raw = states.get(record.deployment)
    state, bundle = apply(EnforcerState.model_validate(raw) if raw else None, record, utcnow())
    states[record.deployment] = state.model_dump(mode="json")
    if bundle is None:
        return []
    await asyncio.to_thread(
        stage.store.put_artifact,
        bundle.deployment,
        "policy",
        bundle.revision,
        bundle.created_at,
        bundle.model_dump(mode="json"),
    )
    return [Output(POLICIES, bundle.deployment, bundle)]


stage.run(handle)

if __name__ == "__main__":
    stage.main()
