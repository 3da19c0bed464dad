"""Enforcer state: the latest APD, the mode the platform team promoted the agent to, and the
attack stories that hold its promotion gate. Every change yields a new policy bundle."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from runward.core.contracts import (
    ApdRevision,
    AttackStory,
    EnforcementMode,
    PolicyBundle,
    PromotionDecision,
    StoryStatus,
)
from services.enforcer.policies import egress_allowlist, network_policy, seccomp_profile


class EnforcerState(BaseModel):
    deployment: str
    revision: int = 0
    apd: ApdRevision | None = None
    mode: EnforcementMode = EnforcementMode.OBSERVE
    open_stories: list[str] = Field(default_factory=list)
    pod_labels: dict[str, str] = Field(default_factory=dict)


def apply(state: EnforcerState | None, record: Any, now: datetime) -> tuple[EnforcerState, PolicyBundle | None]:
    deployment = record.deployment
    state = (state or EnforcerState(deployment=deployment)).model_copy(deep=True)
    if isinstance(record, ApdRevision):
        if state.apd and record.revision <= state.apd.revision:
            return state, None  # redelivered or out-of-date revision
        state.apd = record
    elif isinstance(record, PromotionDecision):
        state.mode = record.mode
    elif isinstance(record, AttackStory):
        stories = set(state.open_stories)
        if record.status is StoryStatus.POTENTIAL_COMPROMISE:
            stories.add(record.story_id)
        else:
            stories.discard(record.story_id)
        if stories == set(state.open_stories):
            return state, None
        state.open_stories = sorted(stories)
    if state.apd is None:
        return state, None  # nothing observed yet: no policy can be derived
    state.revision += 1
    return state, bundle(state, now)


def bundle(state: EnforcerState, now: datetime) -> PolicyBundle:
    assert state.apd is not None
    return PolicyBundle(
        deployment=state.deployment,
        revision=state.revision,
        created_at=now,
        apd_revision=state.apd.revision,
        mode=state.mode,
        egress_allowlist=egress_allowlist(state.apd),
        network_policy=network_policy(state.apd, state.mode, state.pod_labels),
        seccomp_profile=seccomp_profile(state.apd, state.mode),
        open_stories=state.open_stories,
    )
