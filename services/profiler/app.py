"""Profiler: fold enriched events into one APD per Deployment; raise signals on deviations.

events.enriched  ->  apd (a revision per change)  +  signals (deviations, input findings)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from runward.core.config import Settings, settings
from runward.core.contracts import ApdRevision, EnrichedEvent, FlushInfo, SourceRef, Surface
from runward.core.stage import Context, Output, Stage
from runward.core.topics import APD, ENRICHED, SIGNALS
from services.profiler.apd import COALESCE, FLUSH_KIND, ApdState, Policy, fold
from services.profiler.recovery import restore

log = logging.getLogger(__name__)


class Profiler:
    """The profiler stage's handler, its flush timer and the in-memory state they share."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.apds = stage.model_table("apd-state", ApdState)
        self.policy = Policy(
            window_override_s=stage.config.observation_window_s,
            drift_correlation_s=stage.config.drift_correlation_s,
        )
        # deployment -> (wall-clock time of its last event, that event's time, namespace); in memory
        # only: a restart merely delays a flush until the agent's next event.
        self._idle: dict[str, tuple[float, datetime, str]] = {}
        # deployment -> event time of its last last-seen write to the store.
        self._last_touch: dict[str, datetime] = {}

    async def flush_idle_agents(self) -> None:
        """Publish what was coalesced for agents that went quiet.

        Tables can only change inside the stream, so the timer sends a flush record through the
        agent's own partition of the enriched topic instead of touching state here. Its time is the
        agent's last event time plus the coalescing interval: event time, so replays stay exact.
        """
        now = time.monotonic()
        for deployment, (seen, last_ts, namespace) in list(self._idle.items()):
            if now - seen < COALESCE.total_seconds():
                continue
            del self._idle[deployment]
            tick_ts = last_ts + COALESCE
            await self.stage.publish(
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

    async def handle(self, event: EnrichedEvent, ctx: Context) -> Sequence[Output]:
        if event.kind != FLUSH_KIND:
            self._idle[event.deployment] = (time.monotonic(), event.ts, event.namespace)
        state = self.apds.get(event.deployment)
        if state is None:
            state = await self._stored_state(event.deployment)
        result = fold(state, event, self.policy)
        self.apds[event.deployment] = result.state
        outputs: list[Output[Any]] = [Output(SIGNALS, s.deployment, s) for s in result.signals]
        if event.kind != FLUSH_KIND and self._due(event):
            self.stage.touch_agent(event.deployment, event.service_account, event.ts)
        if result.revision:
            rev = result.revision
            self.stage.put_artifact(rev.deployment, "apd", rev.revision, rev.created_at, rev)
            outputs.append(Output(APD, rev.deployment, rev))
        return outputs

    async def _stored_state(self, deployment: str) -> ApdState | None:
        """The state of an agent the table does not know: new, or its changelog went with the broker."""
        stored = await asyncio.to_thread(self.stage.store.latest_artifact, deployment, "apd")
        if stored is None:
            return None
        revision = ApdRevision.model_validate(stored)
        log.warning("APD of %s rebuilt from stored revision %d (no state in the table)", deployment, revision.revision)
        return restore(revision)

    def _due(self, event: EnrichedEvent) -> bool:
        """Agent last-seen times are for humans: a write a minute per agent is plenty."""
        last = self._last_touch.get(event.deployment)
        if last is not None and abs(event.ts - last) < timedelta(minutes=1):
            return False
        self._last_touch[event.deployment] = event.ts
        return True


def build(config: Settings) -> Stage:
    stage = Stage("profiler", inputs=[ENRICHED], outputs=[APD, SIGNALS, ENRICHED], config=config)
    profiler = Profiler(stage)
    stage.app.timer(COALESCE.total_seconds())(profiler.flush_idle_agents)
    stage.run(profiler.handle)
    return stage


def main() -> None:
    build(settings()).main()


if __name__ == "__main__":
    main()
