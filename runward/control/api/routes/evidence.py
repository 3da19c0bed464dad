"""Audit evidence: what an agent would have been refused (seccomp log, tool gateway, network
allowlist), as the collectors published it on runward.audit-evidence and the enforcer stored it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from runward.control.api.deps import Name, Namespace, find_agent, get_store
from runward.control.api.schemas import ErrorBody
from runward.core.contracts import AuditEvidence, deployment_id
from runward.core.store import Store

router = APIRouter(tags=["agents"])
StoreDep = Annotated[Store, Depends(get_store)]


class EvidenceView(BaseModel):
    deployment: str
    since: datetime | None = None
    total: int = Field(description="evidence records in the period, all sources")
    counts: dict[str, int] = Field(description="per source: seccomp, gateway, network")
    evidence: list[AuditEvidence] = Field(description="newest first, at most `limit`")


@router.get(
    "/agents/{namespace}/{name}/audit-evidence",
    response_model=EvidenceView,
    responses={404: {"model": ErrorBody, "description": "unknown agent"}},
    summary="Audit evidence (would-be violations)",
    description="What the agent's enforce-mode policies would have refused while it ran in audit (or observe): "
    "seccomp SCMP_ACT_LOG records, tool-gateway would-be refusals, egress allowlist drops. Newest first, "
    "with the count per source.",
)
def get_audit_evidence(
    namespace: Namespace,
    name: Name,
    store: StoreDep,
    since: Annotated[datetime | None, Query(description="only evidence seen at or after this time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    find_agent(store, namespace, name)
    deployment = deployment_id(namespace, name)
    rows, counts = store.audit_evidence(deployment, since=since, limit=limit)
    return {
        "deployment": deployment,
        "since": since,
        "total": sum(counts.values()),
        "counts": counts,
        "evidence": rows,
    }
