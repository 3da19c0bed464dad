"""BOM: fold enriched events into the runtime AI-BOM of each agent (CycloneDX 1.6) and
compare it with what the agent's deployment pipeline declared.

events.enriched + declared  ->  aibom (a revision when the agent loaded something new; bursts of
                                       package loads coalesced, see pipeline.COALESCE_S)
                            ->  aibom.delta (whenever the declared-vs-observed findings change)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from runward.core.config import Settings, settings
from runward.core.contracts import DeclaredManifest, EnrichedEvent
from runward.core.stage import Context, Output, Stage
from runward.core.topics import AIBOM, BOM_DELTA, DECLARED, ENRICHED
from services.bom.pipeline import AgentState, on_declared, on_event


class Bom:
    """The bom stage's handler and the state it owns."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        # Both inputs are keyed by deployment id, so one table partition holds an agent's whole state.
        self.agents = stage.table("bom-agent-state")
        # Parsed states, valid while the table still holds the very value they were stored as:
        # re-validating a large evidence document for each of an agent's events is the stage's
        # main cost otherwise. A rebalance or restart restores new objects, so the cache misses.
        self._parsed: dict[str, tuple[Any, AgentState]] = {}

    def _load(self, deployment: str) -> AgentState:
        raw = self.agents.get(deployment)
        cached = self._parsed.get(deployment)
        if cached is not None and raw is not None and cached[0] is raw:
            return cached[1]
        return AgentState.model_validate(raw) if raw else AgentState()

    async def handle(self, record: Any, ctx: Context) -> Sequence[Output]:
        deployment = record.deployment
        state = self._load(deployment)
        if isinstance(record, DeclaredManifest):
            step = on_declared(state, record)
        elif isinstance(record, EnrichedEvent):
            step = on_event(state, record)
        else:  # the topic table routes only the records above here
            raise TypeError(f"bom got {type(record).__name__}")
        if not step.changed:
            return []
        raw = step.state.model_dump(mode="json")
        self.agents[deployment] = raw
        self._parsed[deployment] = (raw, step.state)
        store = self.stage.store
        outputs: list[Output] = []
        if step.aibom is not None:
            bom = step.aibom
            if bom.revision == 1:  # the agent may reach bom before the profiler has listed it
                await asyncio.to_thread(store.touch_agent, deployment, None, bom.created_at)
            await asyncio.to_thread(
                store.put_artifact, deployment, "aibom", bom.revision, bom.created_at, bom.model_dump(mode="json")
            )
            outputs.append(Output(AIBOM, deployment, bom))
        if step.delta is not None:
            delta = step.delta
            await asyncio.to_thread(
                store.put_artifact,
                deployment,
                "bom_delta",
                delta.revision,
                delta.created_at,
                delta.model_dump(mode="json"),
            )
            outputs.append(Output(BOM_DELTA, deployment, delta))
        return outputs


def build(config: Settings) -> Stage:
    stage = Stage("bom", inputs=[ENRICHED, DECLARED], outputs=[AIBOM, BOM_DELTA], config=config)
    stage.run(Bom(stage).handle)
    return stage


def main() -> None:
    build(settings()).main()


if __name__ == "__main__":
    main()
