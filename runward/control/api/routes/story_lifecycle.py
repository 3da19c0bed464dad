"""The SOC's work on attack stories: acknowledge, resolve, reopen, and the story's history.

Approver role only; every action is appended to the story's history in the store (who, when,
why) and the story is re-published on the attack-stories topic, so the enforcer's promotion gate
and the SOC's SIEM see the new lifecycle (OCSF `status_id`)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field

from runward.control.api.auth import Principal, require_approver
from runward.control.api.deps import get_publisher, get_store
from runward.control.api.publisher import Publisher, PublishError
from runward.control.api.schemas import ErrorBody
from runward.core.contracts import (
    AttackStory,
    BaselineAcceptInfo,
    EnrichedEvent,
    Resolution,
    SourceRef,
    Surface,
    utcnow,
)
from runward.core.store import Store
from runward.core.topics import ATTACK_STORIES, ENRICHED
from services.correlator.story import LifecycleRefused, accepted_behaviours, transition

log = logging.getLogger(__name__)
router = APIRouter(tags=["attack stories"])

StoryId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$", max_length=64)]


class StoryAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, description="why; kept in the story's history for audit")


class Resolve(StoryAction):
    resolution: Resolution = Field(description="true_positive, false_positive or benign")


class HistoryEntry(BaseModel):
    action: str
    actor: str
    at: datetime
    story_version: int
    resolution: str | None
    reason: str
    detail: dict[str, Any]


_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "the token is not an approver"},
    404: {"model": ErrorBody, "description": "unknown story"},
    409: {"model": ErrorBody, "description": "the action does not apply to the story as it is, or it grew meanwhile"},
    503: {"model": ErrorBody, "description": "Kafka did not acknowledge the updated story"},
}


def _act(
    store: Store,
    publisher: Publisher,
    story_id: str,
    action: Literal["acknowledge", "resolve", "reopen"],
    approver: Principal,
    reason: str,
    resolution: Resolution | None = None,
) -> AttackStory:
    body = store.story(story_id)
    if body is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"attack story {story_id} not found")
    story = AttackStory.model_validate(body)
    try:
        updated = transition(story, action, resolution)
    except LifecycleRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    detail = {"from": story.lifecycle.value, "to": updated.lifecycle.value}
    if not store.transition_story(updated, story.version, action, approver.signer, reason, detail):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"attack story {story_id} grew since version {story.version}: read it again, then decide",
        )
    try:
        publisher.publish(ATTACK_STORIES, updated.deployment, updated)
    except PublishError as exc:
        # The store holds the decision and its audit entry; the gate and the SOC learn it on the next publish.
        log.error("story %s %s stored but not published: %s", story_id, action, exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the {action} is recorded but not yet published to {ATTACK_STORIES.name}: {exc}; retry",
        ) from None
    log.info("%s: story %s %s (%s)", approver.name, story_id, action, reason)
    return updated


@router.post(
    "/stories/{story_id}/acknowledge",
    response_model=None,
    summary="Acknowledge an attack story (someone is on it)",
    responses={200: {"model": AttackStory}, **_RESPONSES},
)
def acknowledge(
    story_id: StoryId,
    body: StoryAction,
    approver: Annotated[Principal, Depends(require_approver)],
    store: Annotated[Store, Depends(get_store)],
    publisher: Annotated[Publisher, Depends(get_publisher)],
) -> dict[str, Any]:
    return _act(store, publisher, story_id, "acknowledge", approver, body.reason).model_dump(mode="json")


@router.post(
    "/stories/{story_id}/resolve",
    response_model=None,
    summary="Resolve an attack story: true positive, false positive or benign, with a reason",
    description="A resolved story no longer holds its agent's promotion gate; new linked signals reopen it.",
    responses={200: {"model": AttackStory}, **_RESPONSES},
)
def resolve(
    story_id: StoryId,
    body: Resolve,
    approver: Annotated[Principal, Depends(require_approver)],
    store: Annotated[Store, Depends(get_store)],
    publisher: Annotated[Publisher, Depends(get_publisher)],
) -> dict[str, Any]:
    return _act(store, publisher, story_id, "resolve", approver, body.reason, body.resolution).model_dump(mode="json")


@router.post(
    "/stories/{story_id}/reopen",
    response_model=None,
    summary="Reopen a resolved attack story",
    responses={200: {"model": AttackStory}, **_RESPONSES},
)
def reopen(
    story_id: StoryId,
    body: StoryAction,
    approver: Annotated[Principal, Depends(require_approver)],
    store: Annotated[Store, Depends(get_store)],
    publisher: Annotated[Publisher, Depends(get_publisher)],
) -> dict[str, Any]:
    return _act(store, publisher, story_id, "reopen", approver, body.reason).model_dump(mode="json")


@router.get(
    "/stories/{story_id}/history",
    response_model=list[HistoryEntry],
    summary="A story's append-only history: every action, who, when, why",
    responses={404: {"model": ErrorBody}},
)
def history(story_id: StoryId, store: Annotated[Store, Depends(get_store)]) -> list[HistoryEntry]:
    if store.story(story_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"attack story {story_id} not found")
    return [HistoryEntry.model_validate(entry) for entry in store.story_history(story_id)]


class Accepted(BaseModel):
    story_id: str
    deployment: str
    behaviours: list[str] = Field(description="what joins the agent's baseline (the profiler publishes a new APD)")


@router.post(
    "/stories/{story_id}/accept-baseline",
    response_model=Accepted,
    summary="Accept a story's behaviours into the agent's baseline (a false positive)",
    description="Approver role only. Drift pending after a rollout and deviations the story signalled join "
    "the APD enforce-mode policies are built from; input findings never do. Audited in the story's history.",
    responses=_RESPONSES,
)
def accept_baseline(
    story_id: StoryId,
    body: StoryAction,
    approver: Annotated[Principal, Depends(require_approver)],
    store: Annotated[Store, Depends(get_store)],
    publisher: Annotated[Publisher, Depends(get_publisher)],
) -> Accepted:
    found = store.story(story_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"attack story {story_id} not found")
    story = AttackStory.model_validate(found)
    behaviours = accepted_behaviours(story)
    if not behaviours:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"attack story {story_id} has no behaviour to accept")
    if not store.transition_story(
        story, story.version, "accept_baseline", approver.signer, body.reason, {"behaviours": behaviours}
    ):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"attack story {story_id} grew since version {story.version}: read it again, then decide",
        )
    now = utcnow()
    event = EnrichedEvent(
        event_id=f"accept:{story_id}:{now.isoformat()}",
        ts=max(now, story.last_seen),
        deployment=story.deployment,
        namespace=story.deployment.partition("/")[0],
        surface=Surface.DEPLOYMENT,
        kind="baseline_accept",
        detail=BaselineAcceptInfo(story_id=story_id, approver=approver.name, reason=body.reason, behaviours=behaviours),
        source=SourceRef(topic="runward.api.accept-baseline", partition=0, offset=0),
    )
    try:
        publisher.publish(ENRICHED, story.deployment, event)
    except PublishError as exc:
        log.error("baseline acceptance of story %s stored but not published: %s", story_id, exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the acceptance is recorded but not yet published to {ENRICHED.name}: {exc}; retry",
        ) from None
    log.info("%s accepted %s into the baseline of %s (%s)", approver.name, behaviours, story.deployment, body.reason)
    return Accepted(story_id=story_id, deployment=story.deployment, behaviours=behaviours)
