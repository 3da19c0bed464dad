"""The go-live history: list, export (JSON lines) and verification of the hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from runward.control.api.deps import get_store
from runward.core.contracts import DeploymentId
from runward.core.store import Store, history

router = APIRouter(tags=["go-live"])
StoreDep = Annotated[Store, Depends(get_store)]


class HistoryEntry(BaseModel):
    seq: int = Field(description="position in the chain, from 1")
    deployment: str
    kind: str = Field(description="promotion, waiver, review, baseline_acceptance, story_resolution or proof")
    actor: str = Field(description="the person (or token) who decided")
    reason: str
    ts: datetime
    body: dict[str, Any]
    prev_hash: str
    hash: str = Field(description="SHA-256 of this entry's content and prev_hash")


class ChainVerification(BaseModel):
    ok: bool
    entries: int = Field(description="entries verified before the chain ended or broke")
    head: str = Field(description="hash of the last verified entry; keep it outside to detect a truncated tail")
    broken_at: int | None
    problem: str | None


@router.get(
    "/history",
    response_model=list[HistoryEntry],
    summary="Go-live history",
    description="Promotions, waivers, reviews, baseline acceptances and story resolutions, oldest first.",
)
def list_history(
    store: StoreDep,
    deployment: Annotated[DeploymentId | None, Query(description="namespace/name of one agent")] = None,
    after: Annotated[int, Query(ge=0, description="only entries after this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return history.entries(store, deployment=deployment, limit=limit, after_seq=after)


@router.get(
    "/history/export",
    summary="Export the go-live history (JSON lines)",
    description="The whole hash chain, one JSON object per line, to keep outside the store.",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def export_history(store: StoreDep) -> StreamingResponse:
    return StreamingResponse(
        history.export_jsonl(store),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="runward-golive-history.jsonl"'},
    )


@router.get(
    "/history/verify",
    response_model=ChainVerification,
    summary="Verify the go-live history",
    description="Recomputes every hash of the chain: a past entry edited or deleted in the store is "
    "reported with the first entry where the chain breaks.",
)
def verify_history(store: StoreDep) -> dict[str, Any]:
    return history.verify(store).as_dict()
