"""Operational records: dead letters and promotion decisions."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from runward.core.contracts.common import DeploymentId, Record
from runward.core.contracts.pipeline import EnforcementMode, SourceRef


class DeadLetter(Record):
    """A record a stage could not accept, kept with the reason instead of being dropped."""

    stage: str
    ts: datetime
    source: SourceRef
    reason: str
    key: str | None = None
    payload: str = Field(description="the original bytes, decoded as UTF-8 with replacement, truncated")
    payload_truncated: bool = False


class PromotionDecision(Record):
    """A platform-team approver moving an agent through Observe -> Audit -> Enforce."""

    deployment: DeploymentId
    mode: EnforcementMode
    approver: str
    reason: str
    ts: datetime
    accept_apd_revision: int | None = Field(
        default=None,
        ge=1,
        description="an approver accepting this APD revision into an enforced agent's frozen policies (mode "
        "stays enforce); signed like any decision",
    )
    signature: str | None = Field(
        default=None, description="hmac-sha256:<hex> by the API over the record (runward.core.signing)"
    )
