"""The store: where stages leave their artifacts for the API. SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, defer, sessionmaker

from runward.core.codec import to_json
from runward.core.contracts import AttackStory, AuditEvidence, DeadLetter, StoryLifecycle, utcnow
from runward.core.store import chain
from runward.core.store.migrate import check_at_head
from runward.core.store.schema import (
    Agent,
    Artifact,
    AttackStoryRow,
    AuditEvidenceRow,
    DeadLetterRow,
    StageHealth,
    StoryEventRow,
)


class _JSONText(str):
    """JSON already serialised (by `codec.to_json`), for a JSON column to store as it is."""


def _json_serialiser(value: Any) -> str:
    # The engine's serialiser for every JSON column: text a caller serialised is stored as it
    # is, not serialised a second time; anything else as SQLAlchemy's default would.
    return str(value) if isinstance(value, _JSONText) else json.dumps(value)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite drops the zone of DateTime(timezone=True); everything Runward writes is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


class Store:
    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine = sa.create_engine(
            url, connect_args=connect_args, pool_pre_ping=True, json_serializer=_json_serialiser
        )
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_wal)
        if check_schema:
            check_at_head(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def _insert(self) -> Any:
        return sqlite_insert if self.engine.dialect.name == "sqlite" else postgresql_insert

    def write_batch(
        self,
        *,
        touches: Sequence[tuple[str, str | None, datetime, datetime]] = (),
        artifacts: Sequence[tuple[str, str, int, datetime, str]] = (),
        stories: Sequence[AttackStory] = (),
    ) -> None:
        """A stage batch's writes in one transaction: agents seen (deployment, service account,
        first, last), artifact revisions (idempotent per revision; the body as JSON text, as
        `codec.to_json` writes it) and stories (merged as `_merge_stories` says, each body
        serialised once by `codec.to_json`). Agents are one multi-row upsert, artifacts one
        upsert executed for many rows, stories one locking read and one flush: not a round trip
        per record."""
        if stories:
            # A reopening appends to the go-live chain: retry a lost race for its seq (the
            # writes are idempotent upserts, so a retried transaction writes the same rows).
            chain.with_retries(self.session, lambda s: self._write_batch_in(s, touches, artifacts, stories))
        else:
            with self.session() as s:
                self._write_batch_in(s, touches, artifacts, stories)

    def _write_batch_in(
        self,
        s: Session,
        touches: Sequence[tuple[str, str | None, datetime, datetime]],
        artifacts: Sequence[tuple[str, str, int, datetime, str]],
        stories: Sequence[AttackStory],
    ) -> None:
        insert = self._insert()
        if touches:
            s.execute(self._touch_statement(insert, list(touches)))
        if artifacts:
            s.connection().execute(
                self._artifact_statement(insert),
                [{"d": d, "k": k, "r": r, "c": c, "b": _JSONText(b)} for d, k, r, c, b in artifacts],
            )
        if stories:
            self._merge_stories(s, stories)

    @staticmethod
    def _artifact_statement(insert: Any) -> Any:
        # One statement with one parameter per column, executed for many rows: a multi-row
        # VALUES with a bound parameter per value cost SQLAlchemy more than the database did
        # (the statement was compiled anew for every batch size). The body arrives as JSON text,
        # which the engine's JSON serialiser stores as it is.
        statement = insert(Artifact.__table__).values(
            deployment=sa.bindparam("d"),
            kind=sa.bindparam("k"),
            revision=sa.bindparam("r"),
            created_at=sa.bindparam("c", type_=Artifact.created_at.type),
            body=sa.bindparam("b", type_=Artifact.body.type),
        )
        return statement.on_conflict_do_update(
            index_elements=[Artifact.deployment, Artifact.kind, Artifact.revision],
            set_={"body": statement.excluded.body, "created_at": statement.excluded.created_at},
        )

    @staticmethod
    def _touch_statement(insert: Any, touches: list[tuple[str, str | None, datetime, datetime]]) -> Any:
        statement = insert(Agent).values(
            [
                {
                    "deployment": deployment,
                    "namespace": deployment.partition("/")[0],
                    "name": deployment.partition("/")[2],
                    "service_account": service_account,
                    "first_seen": first,
                    "last_seen": last,
                }
                for deployment, service_account, first, last in touches
            ]
        )
        new = statement.excluded
        return statement.on_conflict_do_update(
            index_elements=[Agent.deployment],
            set_={
                "last_seen": sa.case((Agent.last_seen < new.last_seen, new.last_seen), else_=Agent.last_seen),
                "service_account": sa.func.coalesce(new.service_account, Agent.service_account),
            },
        )

    # --- agents ---------------------------------------------------------------------------

    def touch_agent(self, deployment: str, service_account: str | None, seen: datetime) -> None:
        """Record that the agent was seen. One atomic upsert: the profiler and bom stages both
        call this for a new agent at the same moment, and a read-then-insert would race."""
        with self.session() as s:
            s.execute(self._touch_statement(self._insert(), [(deployment, service_account, seen, seen)]))

    def agents(self) -> list[dict[str, Any]]:
        with self.session() as s:
            rows = s.scalars(sa.select(Agent).order_by(Agent.deployment)).all()
            return [
                {
                    "deployment": a.deployment,
                    "namespace": a.namespace,
                    "name": a.name,
                    "service_account": a.service_account,
                    "first_seen": _aware(a.first_seen),
                    "last_seen": _aware(a.last_seen),
                }
                for a in rows
            ]

    # --- artifacts ------------------------------------------------------------------------

    def put_artifact(
        self, deployment: str, kind: str, revision: int, created_at: datetime, body: dict[str, Any]
    ) -> None:
        """Idempotent per (deployment, kind, revision): a redelivered record rewrites the same row."""
        with self.session() as s:
            row = s.scalar(
                sa.select(Artifact).where(
                    Artifact.deployment == deployment, Artifact.kind == kind, Artifact.revision == revision
                )
            )
            if row is None:
                s.add(Artifact(deployment=deployment, kind=kind, revision=revision, created_at=created_at, body=body))
            else:
                row.body, row.created_at = body, created_at

    def latest_artifact(self, deployment: str, kind: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.scalar(
                sa.select(Artifact)
                .where(Artifact.deployment == deployment, Artifact.kind == kind)
                .order_by(Artifact.revision.desc())
                .limit(1)
            )
            return dict(row.body) if row else None

    def artifact(self, deployment: str, kind: str, revision: int) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.scalar(
                sa.select(Artifact).where(
                    Artifact.deployment == deployment, Artifact.kind == kind, Artifact.revision == revision
                )
            )
            return dict(row.body) if row else None

    def artifact_revisions(self, deployment: str, kind: str) -> list[int]:
        with self.session() as s:
            return list(
                s.scalars(
                    sa.select(Artifact.revision)
                    .where(Artifact.deployment == deployment, Artifact.kind == kind)
                    .order_by(Artifact.revision)
                )
            )

    # --- attack stories -------------------------------------------------------------------

    def put_story(self, story: AttackStory) -> None:
        """Write one story version (the correlator writes its batches through `write_batch`)."""
        self.write_batch(stories=[story])

    @staticmethod
    def _merge_stories(s: Session, stories: Sequence[AttackStory]) -> None:
        """The one rule for writing a story the correlator grew: a version never replaces a newer
        one; a resolved story that gained signals is reopened, and the reopening is in its
        history; otherwise the story keeps the lifecycle the SOC gave it. The rows are read
        locked, so an acknowledge or resolve in flight waits instead of being overwritten."""
        newest: dict[str, AttackStory] = {}
        for story in stories:
            known = newest.get(story.story_id)
            if known is None or story.version >= known.version:
                newest[story.story_id] = story
        # The stored bodies are not read (only a reopening looks at one): parsing each would cost
        # as much as writing it.
        query = (
            sa.select(AttackStoryRow)
            .where(AttackStoryRow.story_id.in_(newest))
            .options(defer(AttackStoryRow.body))
            .with_for_update()
        )
        rows = {row.story_id: row for row in s.scalars(query)}
        for story_id, story in newest.items():
            row = rows.get(story_id)
            if row is None:
                s.add(
                    AttackStoryRow(
                        story_id=story.story_id,
                        deployment=story.deployment,
                        version=story.version,
                        status=story.status,
                        severity=story.severity,
                        first_seen=story.first_seen,
                        last_seen=story.last_seen,
                        body=_stored(story),
                    )
                )
                continue
            if story.version < row.version:
                continue
            if story.version > row.version and row.lifecycle == StoryLifecycle.RESOLVED:
                # New linked signals reopen a closed story: the SOC must look again.
                event = StoryEventRow(
                    story_id=story.story_id,
                    deployment=story.deployment,
                    action="reopen",
                    actor="correlator",
                    at=story.last_seen,
                    story_version=story.version,
                    resolution=None,
                    reason=f"new linked signals (story version {story.version})",
                    detail={"previous_resolution": row.body.get("resolution")},
                )
                s.add(event)
                # The reopening is in the one tamper-evident go-live history too.
                chain.append_story_event(s, event)
                row.lifecycle = StoryLifecycle.OPEN
            elif story.version > row.version:
                story = story.model_copy(update={"lifecycle": StoryLifecycle(row.lifecycle), "resolution": None})
            row.version, row.status, row.severity = story.version, story.status, story.severity
            row.last_seen, row.body = story.last_seen, _stored(story)

    def transition_story(
        self, story: AttackStory, expected_version: int, action: str, actor: str, reason: str, detail: dict[str, Any]
    ) -> bool:
        """Write a story's new lifecycle and append who did it, when and why, in one transaction:
        to the story's own events and to the go-live history's hash chain.

        False when the story moved on (a signal joined since `expected_version` was read): the
        caller re-reads rather than closing what it has not seen."""

        def write(s: Session) -> bool:
            row = s.get(AttackStoryRow, story.story_id, with_for_update=True)
            if row is None or row.version != expected_version:
                return False
            row.lifecycle, row.body = story.lifecycle, story.model_dump(mode="json")
            event = StoryEventRow(
                story_id=story.story_id,
                deployment=story.deployment,
                action=action,
                actor=actor,
                at=utcnow(),
                story_version=row.version,
                resolution=story.resolution,
                reason=reason,
                detail=detail,
            )
            s.add(event)
            chain.append_story_event(s, event)
            return True

        return chain.with_retries(self.session, write)

    def story_history(self, story_id: str) -> list[dict[str, Any]]:
        query = sa.select(StoryEventRow).where(StoryEventRow.story_id == story_id).order_by(StoryEventRow.id)
        with self.session() as s:
            return [
                {
                    "action": r.action,
                    "actor": r.actor,
                    "at": _aware(r.at),
                    "story_version": r.story_version,
                    "resolution": r.resolution,
                    "reason": r.reason,
                    "detail": dict(r.detail),
                }
                for r in s.scalars(query)
            ]

    def stories(self, deployment: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = sa.select(AttackStoryRow).order_by(AttackStoryRow.last_seen.desc()).limit(limit)
        if deployment:
            query = query.where(AttackStoryRow.deployment == deployment)
        with self.session() as s:
            return [dict(r.body) for r in s.scalars(query)]

    def story(self, story_id: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.get(AttackStoryRow, story_id)
            return dict(row.body) if row else None

    # --- stage health ---------------------------------------------------------------------

    def record_progress(
        self, stage: str, processed: int, dead_letters: int, lag: int, last_record_at: datetime | None
    ) -> None:
        """Add to a stage's counters; called in batches by each stage's heartbeat.

        A stage may run several workers, each adding its own counts: the row is made if missing
        (a second worker's insert of it is a no-op, not a conflict that ended the worker) and the
        counts are added in the database, so two workers' heartbeats never lose each other's.
        """
        values: dict[str, Any] = {"lag": lag, "updated_at": utcnow()}
        if last_record_at is not None:
            values["last_record_at"] = last_record_at
        with self.session() as s:
            self._ensure_stage_row(s, stage)
            s.execute(
                sa.update(StageHealth)
                .where(StageHealth.stage == stage)
                .values(
                    processed=sa.func.coalesce(StageHealth.processed, 0) + processed,
                    dead_letters=sa.func.coalesce(StageHealth.dead_letters, 0) + dead_letters,
                    **values,
                )
            )

    def record_lost_in_flight(self, lost: Mapping[str, int]) -> None:
        """Add what a broker restart lost before each stage read it (stage -> records)."""
        with self.session() as s:
            for stage, count in lost.items():
                self._ensure_stage_row(s, stage)
                s.execute(
                    sa.update(StageHealth)
                    .where(StageHealth.stage == stage)
                    .values(lost_in_flight=sa.func.coalesce(StageHealth.lost_in_flight, 0) + count)
                )

    def _ensure_stage_row(self, s: Session, stage: str) -> None:
        row = {"stage": stage, "processed": 0, "dead_letters": 0, "lag": 0, "updated_at": utcnow()}
        s.execute(self._insert()(StageHealth).values(**row).on_conflict_do_nothing(index_elements=[StageHealth.stage]))

    def stage_health(self) -> list[dict[str, Any]]:
        with self.session() as s:
            return [
                {
                    "stage": r.stage,
                    "processed": r.processed,
                    "dead_letters": r.dead_letters,
                    "lag": r.lag,
                    "lost_in_flight": r.lost_in_flight or 0,
                    "last_record_at": _aware(r.last_record_at),
                    "updated_at": _aware(r.updated_at),
                }
                for r in s.scalars(sa.select(StageHealth).order_by(StageHealth.stage))
            ]

    def put_dead_letter(self, letter: DeadLetter) -> None:
        with self.session() as s:
            s.add(
                DeadLetterRow(
                    stage=letter.stage,
                    topic=letter.source.topic,
                    partition=letter.source.partition,
                    offset=letter.source.offset,
                    reason=letter.reason,
                    created_at=letter.ts,
                )
            )

    def dead_letters(self, stage: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = sa.select(DeadLetterRow).order_by(DeadLetterRow.id.desc()).limit(limit)
        if stage:
            query = query.where(DeadLetterRow.stage == stage)
        with self.session() as s:
            return [
                {
                    "stage": r.stage,
                    "topic": r.topic,
                    "partition": r.partition,
                    "offset": r.offset,
                    "reason": r.reason,
                    "created_at": _aware(r.created_at),
                }
                for r in s.scalars(query)
            ]

    # --- audit evidence -------------------------------------------------------------------

    def put_audit_evidence(self, records: Sequence[AuditEvidence]) -> None:
        """Idempotent per evidence id: a redelivered record is not stored twice."""
        if not records:
            return
        statement = self._insert()(AuditEvidenceRow).values(
            [
                {
                    "evidence_id": r.evidence_id,
                    "deployment": r.deployment,
                    "ts": r.ts,
                    "source": r.source.value,
                    "action": r.action[:512],
                    "body": r.model_dump(mode="json"),
                }
                for r in {r.evidence_id: r for r in records}.values()
            ]
        )
        with self.session() as s:
            s.execute(statement.on_conflict_do_nothing(index_elements=[AuditEvidenceRow.evidence_id]))

    def audit_evidence(
        self, deployment: str, since: datetime | None = None, limit: int = 100
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """The agent's evidence newest first (at most `limit`) and the count per source, both
        since `since` when given."""
        where = [AuditEvidenceRow.deployment == deployment]
        if since is not None:
            where.append(AuditEvidenceRow.ts >= since)
        with self.session() as s:
            rows = s.scalars(
                sa.select(AuditEvidenceRow)
                .where(*where)
                .order_by(AuditEvidenceRow.ts.desc(), AuditEvidenceRow.evidence_id)
                .limit(limit)
            ).all()
            counts = s.execute(
                sa.select(AuditEvidenceRow.source, sa.func.count()).where(*where).group_by(AuditEvidenceRow.source)
            ).all()
        return [dict(r.body) for r in rows], {str(source): int(n) for source, n in counts}


def _stored(story: AttackStory) -> dict[str, Any]:
    # Typed as the column's dict: the engine's serialiser stores the text as it is.
    return cast(dict[str, Any], _JSONText(to_json(story)))


def _sqlite_wal(dbapi_conn: Any, _record: Any) -> None:
    # Several stage processes share one SQLite file: WAL lets readers run beside one writer.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
