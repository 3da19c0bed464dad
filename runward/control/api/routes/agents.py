"""Agents (one per Deployment) and the artifacts the stages produced for them."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse, Response

from runward.control.api.deps import Name, Namespace, find_agent, get_store
from runward.control.api.schemas import AgentArtifacts, AgentDetail, AgentSummary, ErrorBody
from runward.control.api.state import load_state
from runward.core.contracts import AiBom, ApdRevision, PolicyBundle, deployment_id
from runward.core.store import Store

ARTIFACT_KINDS: tuple[str, ...] = ("apd", "aibom", "policy", "reconciliation", "bom_delta")
_KIND_LABEL = {
    "apd": "APD",
    "aibom": "AI-BOM",
    "policy": "policy bundle",
    "reconciliation": "reconciliation report",
    "bom_delta": "AI-BOM delta",
}
CYCLONEDX_MEDIA_TYPE = "application/vnd.cyclonedx+json; version=1.6"
# Rendered HTML can quote what agents saw (prompts, tool output): never let it run script.
_HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(tags=["agents"])
StoreDep = Annotated[Store, Depends(get_store)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown agent or no such artifact"},
}


def _latest(store: Store, namespace: str, name: str, kind: str) -> dict[str, Any]:
    find_agent(store, namespace, name)
    body = store.latest_artifact(deployment_id(namespace, name), kind)
    if body is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no {_KIND_LABEL[kind]} stored for agent {namespace}/{name} yet",
        )
    return body


@router.get(
    "/agents",
    response_model=list[AgentSummary],
    summary="List agents",
    description="Every agent (Deployment) Runward has observed: service account, first/last seen, "
    "APD window status and revision, enforcement mode and open attack stories.",
)
def list_agents(store: StoreDep) -> list[AgentSummary]:
    return [load_state(store, agent).summary() for agent in store.agents()]


@router.get(
    "/agents/{namespace}/{name}",
    response_model=AgentDetail,
    responses=_NOT_FOUND,
    summary="One agent with its latest artifacts",
    description="The agent summary plus the latest APD, AI-BOM, policy bundle, reconciliation "
    "report and AI-BOM delta (null when the stage has not produced one) and the "
    "stored revisions of each.",
)
def get_agent(namespace: Namespace, name: Name, store: StoreDep) -> AgentDetail:
    state = load_state(store, find_agent(store, namespace, name))
    deployment = state.agent["deployment"]
    artifacts = {kind: store.latest_artifact(deployment, kind) for kind in ARTIFACT_KINDS}
    return AgentDetail(
        **state.summary().model_dump(),
        open_story_ids=[s.story_id for s in state.open_stories],
        artifacts=AgentArtifacts(**artifacts),
        revisions={kind: store.artifact_revisions(deployment, kind) for kind in ARTIFACT_KINDS},
    )


@router.get(
    "/agents/{namespace}/{name}/apd",
    summary="Latest APD revision",
    description="The agent's Application Profile DNA: its behavioural envelope and observation window.",
    responses={200: {"model": ApdRevision}, **_NOT_FOUND},
)
def get_apd(namespace: Namespace, name: Name, store: StoreDep) -> JSONResponse:
    return JSONResponse(_latest(store, namespace, name, "apd"))


@router.get(
    "/agents/{namespace}/{name}/aibom",
    summary="Runtime AI-BOM (CycloneDX 1.6 download)",
    description="The latest runtime AI-BOM as a CycloneDX 1.6 JSON file attachment.",
    response_class=Response,
    responses={
        200: {
            "content": {CYCLONEDX_MEDIA_TYPE: {"schema": {"type": "object"}}},
            "description": "CycloneDX 1.6 JSON document",
        },
        **_NOT_FOUND,
    },
)
def get_aibom(namespace: Namespace, name: Name, store: StoreDep) -> Response:
    bom = AiBom.model_validate(_latest(store, namespace, name, "aibom"))
    filename = f"{namespace}_{name}.aibom.r{bom.revision}.cdx.json"
    return Response(
        content=json.dumps(bom.cyclonedx, indent=2),
        media_type=CYCLONEDX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/agents/{namespace}/{name}/policies",
    summary="Latest policy bundle",
    description="NetworkPolicy (from observed egress) and seccomp profile (from observed syscalls) "
    "at the mode the agent was promoted to.",
    responses={200: {"model": PolicyBundle}, **_NOT_FOUND},
)
def get_policies(namespace: Namespace, name: Name, store: StoreDep) -> JSONResponse:
    return JSONResponse(_latest(store, namespace, name, "policy"))


@router.get(
    "/agents/{namespace}/{name}/reconciliation",
    summary="Declared-vs-observed reconciliation",
    description="RBAC/IAM granted versus actually used. `format=markdown` or `format=html` serve "
    "the rendering the stage stored under `rendered.markdown` / `rendered.html`.",
    responses={200: {"content": {"application/json": {}, "text/markdown": {}, "text/html": {}}}, **_NOT_FOUND},
)
def get_reconciliation(
    namespace: Namespace,
    name: Name,
    store: StoreDep,
    format: Annotated[Literal["json", "markdown", "html"], Query(description="representation")] = "json",
) -> Response:
    body = _latest(store, namespace, name, "reconciliation")
    if format == "json":
        return JSONResponse(body)
    rendered = body.get("rendered")
    text = rendered.get(format) if isinstance(rendered, dict) else None
    if not isinstance(text, str):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"the reconciliation report of {namespace}/{name} has no stored {format} rendering; "
            "request format=json",
        )
    if format == "markdown":
        return Response(text, media_type="text/markdown; charset=utf-8")
    return Response(text, media_type="text/html; charset=utf-8", headers=_HTML_HEADERS)


@router.get(
    "/agents/{namespace}/{name}/bom-delta",
    summary="Declared-vs-runtime AI-BOM delta",
    description="What the agent loaded at runtime that its manifest did not declare, and the reverse.",
    responses=_NOT_FOUND,
)
def get_bom_delta(namespace: Namespace, name: Name, store: StoreDep) -> JSONResponse:
    return JSONResponse(_latest(store, namespace, name, "bom_delta"))


@router.get(
    "/agents/{namespace}/{name}/posture",
    responses=_NOT_FOUND,
    summary="ServiceAccount posture",
    description="One ServiceAccount per agent: flags a ServiceAccount shared with other agent "
    "Deployments and an agent running as its namespace's `default` ServiceAccount.",
)
def get_posture(namespace: Namespace, name: Name, store: StoreDep) -> dict[str, Any]:
    from services.enforcer.posture import assess_service_accounts, deployments_from_agents

    find_agent(store, namespace, name)
    deployments = deployments_from_agents(store.agents())
    wanted = deployment_id(namespace, name)
    posture = next(p for p in assess_service_accounts(deployments) if p.deployment == wanted)
    return posture.model_dump(mode="json")
