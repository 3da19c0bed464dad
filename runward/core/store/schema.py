"""Tables of the store. Alembic migrations under `migrations/` create them; keep both in step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: sa.JSON, datetime: sa.DateTime(timezone=True)}


class Agent(Base):
    __tablename__ = "agents"

    deployment: Mapped[str] = mapped_column(sa.String(512), primary_key=True)
    namespace: Mapped[str] = mapped_column(sa.String(253))
    name: Mapped[str] = mapped_column(sa.String(253))
    service_account: Mapped[str | None] = mapped_column(sa.String(253))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class Artifact(Base):
    """Every revision of every per-agent artifact (APD, AI-BOM, policy bundle), kept for audit."""

    __tablename__ = "artifacts"
    __table_args__ = (sa.UniqueConstraint("deployment", "kind", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(sa.String(512), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    revision: Mapped[int]
    created_at: Mapped[datetime]
    body: Mapped[dict[str, Any]]


class AttackStoryRow(Base):
    __tablename__ = "attack_stories"

    story_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    deployment: Mapped[str] = mapped_column(sa.String(512), index=True)
    version: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(64))
    severity: Mapped[int]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    body: Mapped[dict[str, Any]]
    lifecycle: Mapped[str] = mapped_column(sa.String(16), default="open", server_default="open")


class StoryEventRow(Base):
    """Append-only history of a story's lifecycle and of baseline acceptances: who, when, why."""

    __tablename__ = "story_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    story_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    deployment: Mapped[str] = mapped_column(sa.String(512))
    action: Mapped[str] = mapped_column(sa.String(32))
    actor: Mapped[str] = mapped_column(sa.String(253))
    at: Mapped[datetime]
    story_version: Mapped[int]
    resolution: Mapped[str | None] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    detail: Mapped[dict[str, Any]]


class StageHealth(Base):
    __tablename__ = "stage_health"

    stage: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    processed: Mapped[int] = mapped_column(default=0)
    dead_letters: Mapped[int] = mapped_column(default=0)
    lag: Mapped[int] = mapped_column(default=0)
    last_record_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class DeadLetterRow(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    stage: Mapped[str] = mapped_column(sa.String(64), index=True)
    topic: Mapped[str] = mapped_column(sa.String(255))
    partition: Mapped[int]
    offset: Mapped[int]
    reason: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime]


class HistoryRow(Base):
    """The go-live history: promotions, waivers, reviews, baseline acceptances, story resolutions.

    Append-only and hash-chained: `hash` is the SHA-256 of the row's content and the previous
    row's hash (`runward.core.store.history`), so editing or deleting a past row breaks the chain.
    """

    __tablename__ = "golive_history"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    deployment: Mapped[str] = mapped_column(sa.String(512), index=True)
    kind: Mapped[str] = mapped_column(sa.String(64))
    actor: Mapped[str] = mapped_column(sa.String(512))
    reason: Mapped[str] = mapped_column(sa.Text)
    ts: Mapped[datetime]
    body: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)


class WaiverRow(Base):
    """An accepted risk on one readiness check (subject NULL) or a review of one subject of it."""

    __tablename__ = "waivers"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(sa.String(512), index=True)
    check: Mapped[str] = mapped_column(sa.String(64))
    subject: Mapped[str | None] = mapped_column(sa.String(1024))
    actor: Mapped[str] = mapped_column(sa.String(512))
    reason: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    until: Mapped[datetime | None]
    history_seq: Mapped[int] = mapped_column(sa.ForeignKey("golive_history.seq"))


class AuditEvidenceRow(Base):
    """A would-be violation an agent caused (runward.audit-evidence), kept for the audit soak."""

    __tablename__ = "audit_evidence"
    __table_args__ = (sa.Index("ix_audit_evidence_deployment_ts", "deployment", "ts"),)

    evidence_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    deployment: Mapped[str] = mapped_column(sa.String(512))
    ts: Mapped[datetime]
    source: Mapped[str] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(512))
    body: Mapped[dict[str, Any]]
