"""Profiler: fold enriched events into one APD per Deployment; raise signals on deviations.

events.enriched  ->  apd (a revision per change)  +  signals (deviations, input findings)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from runward.core.contracts import EnrichedEvent, FlushInfo, SourceRef, Surface
from runward.core.stage import Context, Output, Stage
from runward.core.topics import APD, ENRICHED, SIGNALS
from services.profiler.apd import COALESCE, FLUSH_KIND, ApdState, Policy, fold

stage = Stage("profiler", inputs=[ENRICHED], outputs=[APD, SIGNALS, ENRICHED])
app = stage.app
apds = stage.table("apd-state")
policy = Policy(
    window_override_s=stage.config.observation_window_s,
    drift_correlation_s=stage.config.drift_correlation_s,
)


# deployment -> (wall-clock time of its last event, that event's time); in memory only: a restart
# merely delays a flush until the agent's next event.
_idle: dict[str, tuple[float, datetime, str]] = {}


@app.timer(COALESCE.total_seconds())
async def flush_idle_agents() -> None:
    """Publish what was coalesced for agents that went quiet.

    Tables can only change inside the stream, so the timer sends a flush record through the
    agent's own partition of the enriched topic instead of touching state here. Its time is the
    agent's last event time plus the coalescing interval: event time, so replays stay exact.
    """
    now = time.monotonic()
    for deployment, (seen, last_ts, namespace) in list(_idle.items()):
        if now - seen < COALESCE.total_seconds():
            continue
        del _idle[deployment]
        tick_ts = last_ts + COALESCE
        await stage.publish(
            Output(
                ENRICHED,
                deployment,
                EnrichedEvent(
                    event_id=f"flush:{deployment}:{tick_ts.isoformat()}",
                    ts=tick_ts,
                    deployment=deployment,
                    namespace=namespace,
                    surface=Surface.DEPLOYMENT,
                    kind=FLUSH_KIND,
                    detail=FlushInfo(),
                    source=SourceRef(topic="runward.profiler.flush", partition=0, offset=0),
                ),
            )
        )


async def handle(event: EnrichedEvent, ctx: Context) -> Sequence[Output]:
    if event.kind != FLUSH_KIND:
        _idle[event.deployment] = (time.monotonic(), event.ts, event.namespace)
    raw = apds.get(event.deployment)
    result = fold(ApdState.model_validate(raw) if raw else None, event, policy)
    apds[event.deployment] = result.state.model_dump(mode="json")
    outputs: list[Output[Any]] = [Output(SIGNALS, s.deployment, s) for s in result.signals]
    if event.kind != FLUSH_KIND and _due(event):
        await asyncio.to_thread(stage.store.touch_agent, event.deployment, event.service_account, event.ts)
    if result.revision:
        rev = result.revision
        await asyncio.to_thread(
            stage.store.put_artifact, rev.deployment, "apd", rev.revision, rev.created_at, rev.model_dump(mode="json")
        )
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
