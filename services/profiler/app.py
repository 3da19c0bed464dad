"""Profiler: fold enriched events into one APD per Deployment; raise signals on deviations.

events.enriched  ->  apd (a revision per change)  +  signals (deviations, input findings)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from runward.config import AUTONOMY_WINDOWS_S
from runward.contracts import EnrichedEvent
from runward.stage import Context, Output, Stage
from runward.topics import APD, ENRICHED, SIGNALS
from services.profiler.apd import ApdState, Policy, fold

stage = Stage("profiler", inputs=[ENRICHED], outputs=[APD, SIGNALS])
app = stage.app
apds = stage.table("apd-state")
policy = Policy(window_s=AUTONOMY_WINDOWS_S, window_override_s=stage.config.observation_window_s,
                drift_correlation_s=stage.config.drift_correlation_s)


async def handle(event: EnrichedEvent, ctx: Context) -> Sequence[Output]:
    raw = apds.get(event.deployment)
    result = fold(ApdState.model_validate(raw) if raw else None, event, policy)
    apds[event.deployment] = result.state.model_dump(mode="json")
    outputs = [Output(SIGNALS, s.deployment, s) for s in result.signals]
    if _due(event):
        await asyncio.to_thread(stage.store.touch_agent, event.deployment, event.service_account, event.ts)
    if result.revision:
        rev = result.revision
        await asyncio.to_thread(stage.store.put_artifact, rev.deployment, "apd", rev.revision, rev.created_at,
                                rev.model_dump(mode="json"))
        outputs.append(Output(APD, rev.deployment, rev))
    return outputs


_last_touch: dict[str, datetime] = {}


def _due(event: EnrichedEvent) -> bool:
    """Agent last-seen times are for humans: a write a minute per agent is plenty."""
    last = _last_touch.get(event.deployment)
    if last is not None and abs(event.ts - last) < timedelta(minutes=1):
        return False
    _last_touch[event.deployment] = event.ts
    return True


stage.run(handle)

if __name__ == "__main__":
    stage.main()
