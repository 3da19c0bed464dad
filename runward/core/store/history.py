"""The go-live history: an append-only, tamper-evident record of who decided what about an agent.

Promotions (and rollbacks), waivers, reviews, baseline acceptances and story resolutions are
appended as rows of one hash chain: row n stores SHA-256(canonical content of row n + hash of
row n-1). `verify` recomputes the chain, so a past row edited in the database (its reason, its
actor, its time, its body) or deleted is detected at the first row whose hash no longer holds.
The chain proves integrity against edits through the database, not against someone who
rewrites every later row too: export it (JSON lines) to keep an outside copy to compare with.

Waivers are first-class rows of their own table (who, why, until when) and each is also a
history entry, written in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from runward.core.contracts import utcnow
from runward.core.store.repo import Store
from runward.core.store.schema import Artifact, HistoryRow, WaiverRow

GENESIS = "0" * 64
_APPEND_ATTEMPTS = 20


class HistoryKind(StrEnum):
    PROMOTION = "promotion"
    WAIVER = "waiver"
    REVIEW = "review"
    BASELINE_ACCEPTANCE = "baseline_acceptance"
    STORY_RESOLUTION = "story_resolution"
    PROOF = "proof"


class HistoryConflict(RuntimeError):
    """Concurrent writers kept taking the next sequence number; the entry was not appended."""


def _utc(value: datetime) -> datetime:
    # SQLite drops the zone of DateTime(timezone=True); everything Runward writes is UTC.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def canonical(
    seq: int, deployment: str, kind: str, actor: str, reason: str, ts: datetime, body: Any, prev_hash: str
) -> bytes:
    """The bytes a row's hash covers: every column but the hash, in one fixed JSON form."""
    content = {
        "seq": seq,
        "deployment": deployment,
        "kind": kind,
        "actor": actor,
        "reason": reason,
        "ts": _utc(ts).isoformat(timespec="microseconds"),
        "body": body,
        "prev_hash": prev_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_hash(row: HistoryRow) -> str:
    data = canonical(row.seq, row.deployment, row.kind, row.actor, row.reason, row.ts, row.body, row.prev_hash)
    return hashlib.sha256(data).hexdigest()


def _entry(row: HistoryRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "deployment": row.deployment,
        "kind": row.kind,
        "actor": row.actor,
        "reason": row.reason,
        "ts": _utc(row.ts),
        "body": row.body,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


_HISTORY_LOCK = 0x52756E77  # an arbitrary, fixed advisory-lock key for the go-live history chain


def _append_in(
    session: Session, deployment: str, kind: HistoryKind, actor: str, reason: str, body: dict[str, Any], ts: datetime
) -> HistoryRow:
    if session.get_bind().dialect.name == "postgresql":
        # One appender at a time for the transaction (released at commit): concurrent writers wait
        # here instead of racing for the next seq until their retries run out.
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _HISTORY_LOCK})
    last = session.scalar(sa.select(HistoryRow).order_by(HistoryRow.seq.desc()).limit(1))
    seq, prev = (last.seq + 1, last.hash) if last is not None else (1, GENESIS)
    # Round-trip the body through JSON now, so the hash covers exactly what the store gives back.
    stored_body = json.loads(json.dumps(body, default=str))
    row = HistoryRow(
        seq=seq,
        deployment=deployment,
        kind=kind.value,
        actor=actor,
        reason=reason,
        ts=_utc(ts),
        body=stored_body,
        prev_hash=prev,
        hash="",
    )
    row.hash = row_hash(row)
    session.add(row)
    session.flush()
    return row


def _with_retries(store: Store, write: Any) -> Any:
    """Run `write(session)` in its own transaction, retrying when another writer took the seq."""
    for _ in range(_APPEND_ATTEMPTS):
        try:
            with store.session() as session:
                return write(session)
        except (IntegrityError, OperationalError):
            # Two writers read the same last row: the primary key (seq) lets one win; the other
            # re-reads the new end of the chain. SQLite reports a lost write race as "locked".
            continue
    raise HistoryConflict(f"could not append to the go-live history after {_APPEND_ATTEMPTS} attempts")


def append(
    store: Store,
    deployment: str,
    kind: HistoryKind,
    actor: str,
    reason: str,
    body: dict[str, Any],
    ts: datetime | None = None,
) -> dict[str, Any]:
    """Append one entry to the chain and return it (with its seq and hash)."""
    when = ts or utcnow()
    return dict(_with_retries(store, lambda s: _entry(_append_in(s, deployment, kind, actor, reason, body, when))))


def add_waiver(
    store: Store,
    deployment: str,
    check: str,
    actor: str,
    reason: str,
    until: datetime | None,
    subject: str | None = None,
) -> dict[str, Any]:
    """Record a waiver (subject None) or a review of one subject, and its history entry, atomically."""
    kind = HistoryKind.REVIEW if subject else HistoryKind.WAIVER
    now = utcnow()
    body = {"check": check, "subject": subject, "until": _utc(until).isoformat() if until else None}

    def write(session: Session) -> dict[str, Any]:
        entry = _append_in(session, deployment, kind, actor, reason, body, now)
        row = WaiverRow(
            deployment=deployment,
            check=check,
            subject=subject,
            actor=actor,
            reason=reason,
            created_at=now,
            until=_utc(until) if until else None,
            history_seq=entry.seq,
        )
        session.add(row)
        session.flush()
        return _waiver(row)

    return dict(_with_retries(store, write))


def _waiver(row: WaiverRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "deployment": row.deployment,
        "check": row.check,
        "subject": row.subject,
        "kind": (HistoryKind.REVIEW if row.subject else HistoryKind.WAIVER).value,
        "actor": row.actor,
        "reason": row.reason,
        "created_at": _utc(row.created_at),
        "until": _utc(row.until) if row.until else None,
        "history_seq": row.history_seq,
    }


def waivers(store: Store, deployment: str) -> list[dict[str, Any]]:
    with store.session() as s:
        rows = s.scalars(sa.select(WaiverRow).where(WaiverRow.deployment == deployment).order_by(WaiverRow.id))
        return [_waiver(r) for r in rows]


def entries(store: Store, deployment: str | None = None, limit: int = 100, after_seq: int = 0) -> list[dict[str, Any]]:
    """History entries in chain order, oldest first, from after `after_seq`."""
    query = sa.select(HistoryRow).where(HistoryRow.seq > after_seq).order_by(HistoryRow.seq).limit(limit)
    if deployment:
        query = query.where(HistoryRow.deployment == deployment)
    with store.session() as s:
        return [_entry(r) for r in s.scalars(query)]


def _rows(store: Store, batch: int = 500) -> Iterator[HistoryRow]:
    after = 0
    while True:
        with store.session() as s:
            rows = list(
                s.scalars(sa.select(HistoryRow).where(HistoryRow.seq > after).order_by(HistoryRow.seq).limit(batch))
            )
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def export_jsonl(store: Store) -> Iterator[str]:
    """The whole chain as JSON lines, oldest first: an outside copy to verify against later."""
    for row in _rows(store):
        entry = _entry(row)
        entry["ts"] = entry["ts"].isoformat(timespec="microseconds")
        yield json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    head: str
    broken_at: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "broken_at": self.broken_at,
            "problem": self.problem,
        }


def verify(store: Store) -> Verification:
    """Recompute the chain; the first row whose content, link or sequence does not hold breaks it."""
    prev, expected_seq, count = GENESIS, 1, 0
    for row in _rows(store):
        problem = None
        if row.seq != expected_seq:
            problem = f"entry {expected_seq} is missing (the next stored entry is {row.seq}): a row was deleted"
        elif row.prev_hash != prev:
            problem = f"entry {row.seq} does not link to entry {row.seq - 1}: the chain was rewritten"
        elif row_hash(row) != row.hash:
            problem = f"entry {row.seq} was edited after it was written: its content no longer matches its hash"
        if problem:
            return Verification(ok=False, entries=count, head=prev, broken_at=row.seq, problem=problem)
        prev, expected_seq, count = row.hash, row.seq + 1, count + 1
    return Verification(ok=True, entries=count, head=prev)


def artifacts(store: Store, deployment: str, kind: str) -> list[dict[str, Any]]:
    """Every stored revision of one artifact kind of an agent, oldest first (e.g. its policy bundles)."""
    with store.session() as s:
        rows = s.scalars(
            sa.select(Artifact.body)
            .where(Artifact.deployment == deployment, Artifact.kind == kind)
            .order_by(Artifact.revision)
        )
        return [dict(b) for b in rows]
