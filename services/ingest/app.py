"""Ingest: validate raw records, attribute them to an agent's Deployment, enrich them.

raw.sensor + raw.llm + raw.k8s  ->  events.enriched (keyed by deployment id)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from runward.core.config import Settings, settings
from runward.core.contracts import (
    EnrichedEvent,
    K8sAuditEvent,
    K8sObjectEvent,
    RawLlmEvent,
    RawSensorEvent,
    utcnow,
)
from runward.core.stage import Context, Output, Stage
from runward.core.topics import ENRICHED, RAW_K8S, RAW_LLM, RAW_SENSOR
from services.ingest import domain
from services.ingest.injection import Allowlist, Detector, shipped_model


def build(config: Settings) -> Stage:
    stage = Stage("ingest", inputs=[RAW_SENSOR, RAW_LLM, RAW_K8S], outputs=[ENRICHED], config=config)
    # Raw topics are keyed by whatever their producer knows, so cluster knowledge must be whole on every worker.
    registry = stage.global_table("cluster-registry")
    # Loaded once at start: a missing model or a bad allowlist stops the stage instead of letting
    # prompts through unscanned.
    guard = Detector(shipped_model(), Allowlist.load(config.injection_allowlist))
    max_skew = timedelta(seconds=config.max_clock_skew_s)

    async def handle(record: Any, ctx: Context) -> Sequence[Output]:
        return enrich(registry, guard, record, ctx, max_skew)

    stage.run(handle)
    return stage


def enrich(registry: Any, guard: Detector, record: Any, ctx: Context, max_skew: timedelta) -> list[Output]:
    received_at = utcnow()
    claimed = getattr(record, "ts", None)
    if claimed is not None:
        domain.require_zone(claimed)  # before anything is learnt from the record
    events: list[EnrichedEvent]
    if isinstance(record, RawSensorEvent):
        events = domain.enrich_sensor(registry, record, ctx.source)
    elif isinstance(record, RawLlmEvent):
        events = domain.enrich_llm(registry, record, ctx.source, guard=guard)
    elif isinstance(record, K8sObjectEvent):
        events = domain.apply_k8s_object(registry, record, record.ts or utcnow(), ctx.source)
    elif isinstance(record, K8sAuditEvent):
        events = domain.enrich_audit(registry, record, ctx.source)
    else:  # the topic table only routes the records above here
        raise TypeError(f"ingest got {type(record).__name__}")
    # Before anything is learnt from them: a zone-less time is refused here, whole.
    events = [domain.trust_time(e, received_at, max_skew) for e in events]
    released: list[EnrichedEvent] = []
    for event in events:
        if event.service_account and event.kind != "k8s_api":
            released += domain.learn_service_account(
                registry, domain.Identity(event.deployment, event.namespace, event.pod, event.service_account)
            )
    # Parked audit events are released now: their receipt time is this record's.
    released = [domain.trust_time(e, received_at, max_skew) for e in released]
    return [Output(ENRICHED, e.deployment, e) for e in [*released, *events]]


def main() -> None:
    build(settings()).main()


if __name__ == "__main__":
    main()
