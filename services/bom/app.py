"""BOM: fold enriched events into the runtime AI-BOM of each agent (CycloneDX 1.6) and
compare it with what the agent's deployment pipeline declared.

events.enriched + declared  ->  aibom (a revision when the agent loaded something new; bursts of
                                       package loads coalesced, see pipeline.COALESCE_S)
                            ->  aibom.delta (whenever the declared-vs-observed findings change)
"""

from __future__ import annotations

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
        # Parsed once and dumped once per batch: re-validating a large evidence document for each
        # of an agent's events was the stage's main cost.
        self.agents = stage.model_table("bom-agent-state", AgentState)

    async def handle(self, record: Any, ctx: Context) -> Sequence[Output]:
        deployment = record.deployment
        state = self.agents.get(deployment) or AgentState()
        if isinstance(record, DeclaredManifest):
            step = on_declared(state, record)
        elif isinstance(record, EnrichedEvent):
            step = on_event(state, record)
        else:  # the topic table routes only the records above here
            raise TypeError(f"bom got {type(record).__name__}")
        if not step.changed:
            return []
        self.agents[deployment] = step.state
        outputs: list[Output] = []
        if step.aibom is not None:
            bom = step.aibom
            if bom.revision == 1:  # the agent may reach bom before the profiler has listed it
                self.stage.touch_agent(deployment, None, bom.created_at)
            self.stage.put_artifact(deployment, "aibom", bom.revision, bom.created_at, bom)
            outputs.append(Output(AIBOM, deployment, bom))
        if step.delta is not None:
            delta = step.delta
            self.stage.put_artifact(deployment, "bom_delta", delta.revision, delta.created_at, delta)
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
