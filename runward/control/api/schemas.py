"""Response and request bodies of the status API.

Artifacts themselves (APD, AI-BOM, policy bundle, attack story) are served as the stages
stored them, described in OpenAPI by their contract models in `runward.core.contracts`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runward.core.contracts import EnforcementMode, WindowStatus


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class ErrorBody(BaseModel):
    detail: str = Field(description="what went wrong and, where possible, what to do about it")


class GateRefusal(BaseModel):
    detail: str
    reasons: list[str] = Field(description="every gate condition that is not met, one sentence each")


class StageStatus(BaseModel):
    stage: str
    status: Literal["running", "stale", "not started"]
    stale: bool = Field(description="no heartbeat in the last 30 s (true for a stage that never started)")
    processed: int = Field(description="records handled since the stage first started")
    lag: int | None = Field(description="consumer lag over the stage's inputs at its last heartbeat")
    dead_letters: int
    last_record_at: datetime | None = Field(description="when the stage last handled a record")
    heartbeat_at: datetime | None = Field(description="when the stage last reported progress")


class DeadLetterView(BaseModel):
    """Where a rejected record sits and why; the payload is deliberately never served."""

    stage: str
    topic: str
    partition: int
    offset: int
    reason: str
    created_at: datetime | None


class ApdSummary(BaseModel):
    revision: int
    window_status: WindowStatus
    window_ends_at: datetime
    autonomy: str


class AgentSummary(BaseModel):
    deployment: str = Field(description="namespace/name of the agent's Deployment")
    namespace: str
    name: str
    service_account: str | None
    first_seen: datetime
    last_seen: datetime
    apd: ApdSummary | None = Field(description="latest APD revision, null before the profiler wrote one")
    mode: EnforcementMode = Field(description="mode of the latest policy bundle; observe when there is none")
    policy_revision: int | None
    open_attack_stories: int = Field(description="'potential compromise' stories holding the promotion gate")


class AgentArtifacts(BaseModel):
    apd: dict[str, Any] | None
    aibom: dict[str, Any] | None
    policy: dict[str, Any] | None
    reconciliation: dict[str, Any] | None
    bom_delta: dict[str, Any] | None


class AgentDetail(AgentSummary):
    open_story_ids: list[str]
    artifacts: AgentArtifacts = Field(description="latest revision of each artifact kind, null when absent")
    revisions: dict[str, list[int]] = Field(description="artifact kind -> stored revisions, oldest first")


class PromotionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: EnforcementMode
    reason: str = Field(min_length=1, max_length=2000, description="why; kept with the decision for audit")


class PolicyAcceptRequest(BaseModel):
    """An approver accepting a newer APD revision into an enforced agent's frozen policies."""

    model_config = ConfigDict(extra="forbid")

    apd_revision: int = Field(ge=1, description="the APD revision reviewed; it must be the latest")
    reason: str = Field(min_length=1, max_length=2000, description="why; kept with the decision for audit")
