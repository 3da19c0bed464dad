"""Go-live readiness of an agent and the waivers that accept a failing check.

Readiness is computed on each request from the store (`runward.control.api.golive`) with the
enforcer's checks (`services.enforcer.readiness`): viewers read it as JSON, Markdown or HTML
(the report attached to the deployment ticket). Waivers and reviews are approver decisions,
signed by the person the token names, and land in the hash-chained go-live history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from runward.control.api import golive
from runward.control.api.auth import Principal, require_approver
from runward.control.api.deps import Name, Namespace, find_agent, get_store
from runward.control.api.schemas import ErrorBody
from runward.core.config import Settings
from runward.core.contracts import EnforcementMode, utcnow
from runward.core.store import Store, history
from services.enforcer import readiness

router = APIRouter(tags=["go-live"])
StoreDep = Annotated[Store, Depends(get_store)]
_HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


class CheckView(BaseModel):
    id: str
    title: str
    status: Literal["pass", "fail", "waived"]
    evidence: str = Field(description="what the check judged, quoted from the stored artifacts")
    fix: str | None = Field(description="the command or action that makes the check pass")
    waivable: bool
    waiver: dict[str, Any] | None = Field(description="actor, reason, created_at, until of the waiver applied")


class ReadinessView(BaseModel):
    deployment: str
    target: EnforcementMode
    mode: EnforcementMode
    computed_at: datetime
    ready: bool = Field(description="every check the target mode needs passes or is waived")
    checks: list[CheckView]


class WaiverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check: readiness.CheckId
    reason: str = Field(min_length=1, max_length=2000, description="why the risk is accepted")
    until: datetime | None = Field(
        default=None, description="when the waiver lapses; required for a waiver, optional for a review"
    )
    subject: str | None = Field(
        default=None,
        max_length=1024,
        description="review one item of the check (e.g. `undeclared_mcp_server:weather` of aibom_reviewed) "
        "instead of waiving the whole check",
    )


class WaiverView(BaseModel):
    id: int
    deployment: str
    check: str
    subject: str | None
    kind: Literal["waiver", "review"]
    actor: str
    reason: str
    created_at: datetime
    until: datetime | None
    history_seq: int


def _settings(request: Request) -> Settings:
    config: Settings = request.app.state.settings
    return config


@router.get(
    "/agents/{namespace}/{name}/readiness",
    response_model=ReadinessView,
    summary="Go-live readiness",
    description="Every readiness check for promoting the agent to `target` (default enforce): "
    "status pass, fail or waived, the evidence and the command that fixes it. `format=markdown` "
    "or `format=html` render the report for the deployment ticket.",
    responses={
        200: {"content": {"application/json": {}, "text/markdown": {}, "text/html": {}}},
        404: {"model": ErrorBody, "description": "unknown agent"},
    },
)
def get_readiness(
    namespace: Namespace,
    name: Name,
    request: Request,
    store: StoreDep,
    target: Annotated[EnforcementMode, Query(description="the mode to assess readiness for")] = EnforcementMode.ENFORCE,
    format: Annotated[Literal["json", "markdown", "html"], Query(description="representation")] = "json",
) -> Response:
    agent = find_agent(store, namespace, name)
    report = golive.assess(store, agent, _settings(request).audit_soak_s, target)
    if format == "markdown":
        return Response(readiness.render_markdown(report), media_type="text/markdown; charset=utf-8")
    if format == "html":
        return Response(readiness.render_html(report), media_type="text/html; charset=utf-8", headers=_HTML_HEADERS)
    return JSONResponse(ReadinessView.model_validate(report.as_dict()).model_dump(mode="json"))


@router.get(
    "/agents/{namespace}/{name}/waivers",
    response_model=list[WaiverView],
    summary="Waivers and reviews of an agent",
    description="Every waiver and review ever recorded for the agent, oldest first, lapsed ones included.",
    responses={404: {"model": ErrorBody, "description": "unknown agent"}},
)
def list_waivers(namespace: Namespace, name: Name, store: StoreDep) -> list[dict[str, Any]]:
    agent = find_agent(store, namespace, name)
    return history.waivers(store, agent["deployment"])


@router.post(
    "/agents/{namespace}/{name}/waivers",
    status_code=status.HTTP_201_CREATED,
    response_model=WaiverView,
    summary="Waive a readiness check, or review one item of it",
    description="Approver role only. A waiver (no subject) turns a failing waivable check into `waived` "
    "until it lapses; it needs `until`. A review (with a subject) accepts one item, e.g. one "
    "undeclared dependency of the AI-BOM delta. Both are signed by the token's person and "
    "appended to the go-live history.",
    responses={
        403: {"model": ErrorBody, "description": "the token is not an approver"},
        404: {"model": ErrorBody, "description": "unknown agent"},
        409: {"model": ErrorBody, "description": "the check cannot be waived"},
        422: {"description": "invalid body: unknown check, no reason, no or past `until`"},
    },
)
def post_waiver(
    namespace: Namespace,
    name: Name,
    body: WaiverRequest,
    approver: Annotated[Principal, Depends(require_approver)],
    store: StoreDep,
) -> dict[str, Any]:
    agent = find_agent(store, namespace, name)
    if body.subject is not None and body.check not in readiness.REVIEWABLE:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"readiness check {body.check.value} has no items to review one by one; drop `subject`",
        )
    if body.subject is None and body.check not in readiness.WAIVABLE:
        allowed = ", ".join(sorted(c.value for c in readiness.WAIVABLE))
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"readiness check {body.check.value} cannot be waived; fix it instead (waivable: {allowed})",
        )
    if body.subject is None and body.until is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="a waiver needs `until`: when the accepted risk lapses"
        )
    if body.until is not None and body.until.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="`until` needs a time zone (e.g. Z)")
    if body.until is not None and body.until <= utcnow():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="`until` is in the past")
    return history.add_waiver(
        store, agent["deployment"], body.check.value, approver.signer, body.reason, body.until, body.subject
    )
