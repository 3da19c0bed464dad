"""Attack stories as the correlator stored them (OCSF Detection Finding inside).

Stories are served exactly as stored; the contract model only documents them in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status

from runward.control.api.deps import get_store
from runward.control.api.schemas import ErrorBody
from runward.core.contracts import AttackStory, DeploymentId
from runward.core.store import Store

router = APIRouter(tags=["attack stories"])


@router.get(
    "/attack-stories",
    summary="Recent attack stories",
    description="Newest first (by last seen), optionally for one agent. Each story carries its "
    "narrative, signals, MITRE ATLAS/ATT&CK techniques and the OCSF finding.",
    response_model=None,
    responses={200: {"model": list[AttackStory]}},
)
def list_stories(
    store: Annotated[Store, Depends(get_store)],
    deployment: Annotated[DeploymentId | None, Query(description="namespace/name of one agent")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    return store.stories(deployment=deployment, limit=limit)


@router.get(
    "/attack-stories/{story_id}",
    summary="One attack story",
    response_model=None,
    responses={200: {"model": AttackStory}, 404: {"model": ErrorBody}},
)
def get_story(
    store: Annotated[Store, Depends(get_store)],
    story_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$", max_length=64)],
) -> dict[str, Any]:
    story = store.story(story_id)
    if story is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"attack story {story_id} not found")
    return story
