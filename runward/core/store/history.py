"""The go-live history: an append-only, tamper-evident record of who decided what about an agent.

Promotions (and rollbacks), waivers, reviews, baseline acceptances and every story lifecycle
change (acknowledge, resolve, reopen: by a person, or by new signals) are appended as rows of
one hash chain (`chain`): row n stores SHA-256(canonical content of row n + hash of
row n-1). `verify` recomputes the chain, so a past row edited in the database (its reason, its
actor, its time, its body) or deleted is detected at the first row whose hash no longer holds.
The chain proves integrity against edits through the database, not against someone who
rewrites every later row too: export it (JSON lines) to keep an outside copy to compare with.

Waivers are first-class rows of their own table (who, why, until when) and each is also a
history entry, written in the same transaction. So are story events: the `story_events` table
is the story's own view (GET /v1/stories/ID/history); the store chains each one as it writes
it, and `verify` checks that view against the chain, so an edited, deleted or smuggled-in
story event breaks verification like an edited history row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from runward.core.contracts import utcnow
from runward.core.store.chain import (
    GENESIS,
    STORY_EVENT_KINDS,
    HistoryConflict,
    HistoryKind,
    _append_in,
    _entry,
    _utc,
    canonical,
    row_hash,
    story_event_body,
    with_retries,
)
from runward.core.store.repo import Store
from runward.core.store.schema import Artifact, HistoryRow, StoryEventRow, WaiverRow

__all__ = [
    "GENESIS",
    "HistoryConflict",
    "HistoryKind",
    "add_waiver",
    "append",
    "canonical",
    "entries",
    "export_jsonl",
    "row_hash",
    "verify",
    "waivers",
]


def _with_retries(store: Store, write: Any) -> Any:
    return with_retries(store.session, write)


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
    """Recompute the chain; the first row whose content, link or sequence does not hold breaks it.

    Then the stories' own view (`story_events`) is checked against the chain: each lifecycle
    change or baseline acceptance must match the entry that chained it, none may be missing,
    and none may appear that the chain never saw (added behind the API's back)."""
    prev, expected_seq, count = GENESIS, 1, 0
    chained: dict[int, HistoryRow] = {}
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
        if row.kind in _STORY_KINDS and isinstance(row.body.get("story_event"), int):
            chained[row.body["story_event"]] = row
        prev, expected_seq, count = row.hash, row.seq + 1, count + 1
    broken_at, problem = _story_events_problem(store, chained)
    if problem is not None:
        return Verification(ok=False, entries=count, head=prev, broken_at=broken_at, problem=problem)
    return Verification(ok=True, entries=count, head=prev)


_STORY_KINDS = frozenset(kind.value for kind in STORY_EVENT_KINDS.values())


def _same_event(event: StoryEventRow, entry: HistoryRow) -> bool:
    # Through JSON, as the chain stored it: the comparison is of what each table gives back.
    mine = json.loads(json.dumps(story_event_body(event), default=str))
    return (
        mine == entry.body
        and (event.deployment, event.actor, event.reason) == (entry.deployment, entry.actor, entry.reason)
        and _utc(event.at) == _utc(entry.ts)
    )


def _story_events_problem(store: Store, chained: dict[int, HistoryRow]) -> tuple[int | None, str | None]:
    """The first story event that does not match the chain (the entry's seq, and why), if any."""
    first_chained = min(chained, default=None)
    seen: set[int] = set()
    with store.session() as s:
        for event in s.scalars(sa.select(StoryEventRow).order_by(StoryEventRow.id)):
            entry = chained.get(event.id)
            if entry is None:
                if first_chained is not None and event.id > first_chained:
                    return None, (
                        f"story event {event.id} ({event.action} of story {event.story_id}) is in no history "
                        "entry: it was written outside the API"
                    )
                continue  # written before story events were chained: the story's view only
            seen.add(event.id)
            if not _same_event(event, entry):
                return entry.seq, (
                    f"story event {event.id} ({event.action} of story {event.story_id}) was edited: "
                    f"it no longer matches history entry {entry.seq}"
                )
    missing = sorted(set(chained) - seen)
    if missing:
        entry = chained[missing[0]]
        return entry.seq, f"history entry {entry.seq} names story event {missing[0]}, which was deleted"
    return None, None


def artifacts(store: Store, deployment: str, kind: str) -> list[dict[str, Any]]:
    """Every stored revision of one artifact kind of an agent, oldest first (e.g. its policy bundles)."""
    with store.session() as s:
        rows = s.scalars(
            sa.select(Artifact.body)
            .where(Artifact.deployment == deployment, Artifact.kind == kind)
            .order_by(Artifact.revision)
        )
        return [dict(b) for b in rows]
