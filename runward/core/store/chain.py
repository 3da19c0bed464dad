"""The go-live history's hash chain: how one entry is hashed, linked and appended.

Kept apart from `history` (the readers and writers the API uses) so the store's own writes can
chain an entry in the transaction that makes the change: every story lifecycle change and
baseline acceptance (`Store.transition_story`, a reopen by new signals in `Store.put_story`)
lands in the same chain as promotions and waivers, so one `verify` covers them all. The
`story_events` table stays the story's own view; `history.verify` checks it against the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from runward.core.store.schema import HistoryRow, StoryEventRow

T = TypeVar("T")

GENESIS = "0" * 64
_APPEND_ATTEMPTS = 20


class HistoryKind(StrEnum):
    PROMOTION = "promotion"
    WAIVER = "waiver"
    REVIEW = "review"
    BASELINE_ACCEPTANCE = "baseline_acceptance"
    STORY_RESOLUTION = "story_resolution"
    STORY_ACKNOWLEDGEMENT = "story_acknowledgement"
    STORY_REOPEN = "story_reopen"
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


def with_retries(sessions: Callable[[], AbstractContextManager[Session]], write: Callable[[Session], T]) -> T:
    """Run `write(session)` in its own transaction, retrying when another writer took the seq."""
    for _ in range(_APPEND_ATTEMPTS):
        try:
            with sessions() as session:
                return write(session)
        except (IntegrityError, OperationalError):
            # Two writers read the same last row: the primary key (seq) lets one win; the other
            # re-reads the new end of the chain. SQLite reports a lost write race as "locked".
            continue
    raise HistoryConflict(f"could not append to the go-live history after {_APPEND_ATTEMPTS} attempts")


# A story event's action -> the kind of its go-live history entry.
STORY_EVENT_KINDS = {
    "acknowledge": HistoryKind.STORY_ACKNOWLEDGEMENT,
    "resolve": HistoryKind.STORY_RESOLUTION,
    "reopen": HistoryKind.STORY_REOPEN,
    "accept_baseline": HistoryKind.BASELINE_ACCEPTANCE,
}


def story_event_body(event: StoryEventRow) -> dict[str, Any]:
    """What a story event's history entry holds beyond actor, reason and time: enough to check
    the story's own view (the story_events row) against the chain."""
    return {
        "story_event": event.id,
        "story_id": event.story_id,
        "action": event.action,
        "story_version": event.story_version,
        "resolution": event.resolution,
        "detail": event.detail,
    }


def append_story_event(session: Session, event: StoryEventRow) -> HistoryRow:
    """Chain a story lifecycle change or baseline acceptance, in the transaction that writes it."""
    session.flush()  # the event's id, which the entry names
    kind = STORY_EVENT_KINDS.get(event.action)
    if kind is None:
        raise ValueError(f"story action {event.action!r} has no go-live history kind; add it to STORY_EVENT_KINDS")
    return _append_in(session, event.deployment, kind, event.actor, event.reason, story_event_body(event), event.at)
