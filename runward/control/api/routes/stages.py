"""Pipeline health: one row per stage and the dead letters they left."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from runward.control.api.deps import get_store
from runward.control.api.schemas import DeadLetterView, StageStatus
from runward.core.contracts import utcnow
from runward.core.store import Store

STAGES: tuple[str, ...] = ("ingest", "bom", "profiler", "correlator", "enforcer")
# Stages heartbeat every 2 s; 30 s of silence means the worker is stuck, stopped or cut off.
STALE_AFTER = timedelta(seconds=30)

STAGE_NAME = r"^[a-z][a-z0-9_-]{0,63}$"

router = APIRouter(tags=["pipeline"])


def stage_status(stage: str, row: dict[str, Any] | None, now: datetime) -> StageStatus:
    if row is None:
        return StageStatus(
            stage=stage,
            status="not started",
            stale=True,
            processed=0,
            lag=None,
            dead_letters=0,
            last_record_at=None,
            heartbeat_at=None,
        )
    heartbeat: datetime | None = row["updated_at"]
    stale = heartbeat is None or now - heartbeat > STALE_AFTER
    return StageStatus(
        stage=stage,
        status="stale" if stale else "running",
        stale=stale,
        processed=row["processed"] or 0,
        lag=row["lag"],
        dead_letters=row["dead_letters"] or 0,
        lost_in_flight=row.get("lost_in_flight") or 0,
        last_record_at=row["last_record_at"],
        heartbeat_at=heartbeat,
    )


@router.get(
    "/stages",
    response_model=list[StageStatus],
    summary="Health of each pipeline stage",
    description="Processed count, consumer lag, last record time, dead-letter count, records a broker "
    "restart lost before the stage read them, and staleness (no "
    "heartbeat in 30 s) of ingest, bom, profiler, correlator and enforcer, in pipeline order. "
    "A stage that never reported appears as `not started`.",
)
def list_stages(store: Annotated[Store, Depends(get_store)]) -> list[StageStatus]:
    rows = {row["stage"]: row for row in store.stage_health()}
    now = utcnow()
    # Unknown stage names (a stage added later) still show, after the known pipeline.
    names = [*STAGES, *sorted(set(rows) - set(STAGES))]
    return [stage_status(name, rows.get(name), now) for name in names]


@router.get(
    "/dead-letters",
    response_model=list[DeadLetterView],
    summary="Recent dead letters",
    description="Records the stages rejected, newest first, with the reason and where they sit "
    "(topic, partition, offset). The payload is never served: it may hold prompts or "
    "secrets; read it from the dead-letter topic with the right access.",
)
def list_dead_letters(
    store: Annotated[Store, Depends(get_store)],
    stage: Annotated[str | None, Query(pattern=STAGE_NAME, description="one stage only")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterView]:
    return [DeadLetterView.model_validate(row) for row in store.dead_letters(stage=stage, limit=limit)]
