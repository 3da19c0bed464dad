"""BOM: fold enriched events into the runtime AI-BOM of each agent (CycloneDX 1.6).

events.enriched  ->  aibom (a revision whenever the agent loaded something new)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from runward.contracts import AiBom, EnrichedEvent
from runward.stage import Context, Output, Stage
from runward.topics import AIBOM, ENRICHED
from services.bom.cyclonedx_bom import runtime_bom
from services.bom.evidence import RuntimeEvidence, fold

stage = Stage("bom", inputs=[ENRICHED], outputs=[AIBOM])
app = stage.app
evidence_table = stage.table("runtime-evidence")
revisions = stage.table("aibom-revision")


async def handle(event: EnrichedEvent, ctx: Context) -> Sequence[Output]:
    raw = evidence_table.get(event.deployment)
    evidence, changed = fold(RuntimeEvidence.model_validate(raw) if raw else None, event)
    if not changed:
        return []
    evidence_table[event.deployment] = evidence.model_dump(mode="json")
    revision = int(revisions.get(event.deployment) or 0) + 1
    revisions[event.deployment] = revision
    bom = AiBom(deployment=event.deployment, revision=revision, created_at=event.ts,
                cyclonedx=runtime_bom(evidence))
    await asyncio.to_thread(stage.store.put_artifact, bom.deployment, "aibom", revision, bom.created_at,
                            bom.model_dump(mode="json"))
    return [Output(AIBOM, bom.deployment, bom)]


stage.run(handle)

if __name__ == "__main__":
    stage.main()
