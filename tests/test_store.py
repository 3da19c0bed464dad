"""The store against both backends: SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from runward.core.contracts import AttackStory, DeadLetter, Resolution, SourceRef, StoryLifecycle, StoryStatus
from runward.core.stage import _Writes, apply_writes
from runward.core.store import SchemaOutOfDate, Store, upgrade

T = datetime(2026, 11, 27, 9, tzinfo=timezone.utc)


def story(version: int, status: StoryStatus = StoryStatus.POTENTIAL_COMPROMISE) -> AttackStory:
    return AttackStory(
        story_id="story-1",
        deployment="agents/bot",
        version=version,
        first_seen=T,
        last_seen=T + timedelta(seconds=version),
        status=status,
        severity=3,  # type: ignore[arg-type]
        surfaces=[],
        techniques=[],
        narrative=[f"v{version}"],
        signals=[],
        ocsf={},
    )


def test_unmigrated_store_says_how_to_fix_it(db_url: str) -> None:
    with pytest.raises(SchemaOutOfDate, match="run `runward db upgrade`"):
        Store(db_url)


def test_two_stages_seeing_a_new_agent_at_once_both_succeed(db_url: str) -> None:
    """The profiler and bom stages touch a new agent concurrently (each in its own process, so
    each with its own engine): a read-then-insert raced and lost the bom record to the DLQ."""
    upgrade(db_url)
    stores = [Store(db_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def touch(store: Store, i: int) -> None:
        barrier.wait()
        try:
            for n in range(20):
                store.touch_agent(f"agents/new-{n}", "sa" if i == 0 else None, T + timedelta(minutes=i))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=touch, args=(store, i)) for i, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    agents = stores[0].agents()
    assert len(agents) == 20
    # The latest sighting wins whatever the order; a missing service account never erases one.
    assert all(a["last_seen"] == T + timedelta(minutes=3) and a["service_account"] == "sa" for a in agents)
    stores[0].touch_agent("agents/new-0", None, T - timedelta(days=1))  # a late, older record
    assert stores[0].agents()[0]["last_seen"] == T + timedelta(minutes=3)


def test_artifacts_agents_stories_health(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)  # idempotent
    store = Store(db_url)

    store.touch_agent("agents/bot", "bot", T)
    store.touch_agent("agents/bot", None, T + timedelta(hours=1))
    [agent] = store.agents()
    assert agent["service_account"] == "bot" and agent["last_seen"] == T + timedelta(hours=1)
    assert agent["first_seen"].tzinfo is not None

    store.put_artifact("agents/bot", "apd", 1, T, {"revision": 1})
    store.put_artifact("agents/bot", "apd", 2, T, {"revision": 2})
    store.put_artifact("agents/bot", "apd", 2, T, {"revision": 2, "redelivered": True})  # idempotent upsert
    assert store.latest_artifact("agents/bot", "apd") == {"revision": 2, "redelivered": True}
    assert store.artifact_revisions("agents/bot", "apd") == [1, 2]
    assert store.latest_artifact("agents/bot", "aibom") is None

    store.put_story(story(2))
    store.put_story(story(1))  # an older version arriving late never wins
    assert store.story("story-1")["narrative"] == ["v2"]  # type: ignore[index]
    assert [s["story_id"] for s in store.stories(deployment="agents/bot")] == ["story-1"]

    store.record_progress("ingest", 10, 1, 4, T)
    store.record_progress("ingest", 5, 0, 0, None)
    [health] = store.stage_health()
    assert (health["processed"], health["dead_letters"], health["lag"]) == (15, 1, 0)
    assert health["last_record_at"] == T

    store.put_dead_letter(
        DeadLetter(
            stage="ingest",
            ts=T,
            reason="not valid JSON",
            payload="{",
            source=SourceRef(topic="runward.raw.sensor", partition=2, offset=41),
        )
    )
    [letter] = store.dead_letters(stage="ingest")
    assert (letter["topic"], letter["partition"], letter["offset"], letter["reason"]) == (
        "runward.raw.sensor",
        2,
        41,
        "not valid JSON",
    )


def test_a_batch_write_upserts_agents_artifacts_and_stories_in_one_go(db_url: str) -> None:
    upgrade(db_url)
    store = Store(db_url)
    store.put_story(story(3))
    store.put_artifact("agents/bot", "apd", 1, T, {"old": True})
    store.write_batch(
        touches=[("agents/bot", "bot", T, T + timedelta(minutes=5)), ("agents/new", None, T, T)],
        artifacts=[("agents/bot", "apd", 1, T, '{"old": false}'), ("agents/bot", "apd", 2, T, '{"r": 2}')],
        stories=[story(2)],  # an older version never replaces a newer
    )
    assert store.latest_artifact("agents/bot", "apd") == {"r": 2}
    assert store.artifact_revisions("agents/bot", "apd") == [1, 2]
    assert store.story("story-1")["version"] == 3  # type: ignore[index]
    store.write_batch(stories=[story(4)])
    assert store.story("story-1")["version"] == 4  # type: ignore[index]
    agents = {a["deployment"]: a for a in store.agents()}
    assert agents["agents/bot"]["last_seen"] == T + timedelta(minutes=5)
    assert agents["agents/bot"]["service_account"] == "bot" and agents["agents/new"]["service_account"] is None
    store.write_batch(touches=[("agents/bot", None, T, T + timedelta(minutes=1))])  # an older sighting
    assert {a["deployment"]: a for a in store.agents()}["agents/bot"]["last_seen"] == T + timedelta(minutes=5)


def test_a_batch_write_keeps_the_story_lifecycle_rule(db_url: str) -> None:
    """Stories written with a stage batch follow the same rule as one at a time: the SOC's lifecycle
    is kept, a resolved story that grew is reopened with a history entry, older versions never win."""
    upgrade(db_url)
    store = Store(db_url)
    store.write_batch(stories=[story(1)])
    acknowledged = story(1).model_copy(update={"lifecycle": StoryLifecycle.ACKNOWLEDGED})
    assert store.transition_story(acknowledged, 1, "acknowledge", "bob", "looking", {})
    store.write_batch(stories=[story(2)])
    assert store.story("story-1")["lifecycle"] == "acknowledged"  # type: ignore[index]
    resolved = AttackStory.model_validate(store.story("story-1")).model_copy(
        update={"lifecycle": StoryLifecycle.RESOLVED, "resolution": Resolution.BENIGN}
    )
    assert store.transition_story(resolved, 2, "resolve", "bob", "pentest", {})
    # One batch with two newer versions of the story (and an older one): reopened once, at the newest.
    store.write_batch(stories=[story(v) for v in (4, 1, 3)])
    body = store.story("story-1")
    assert body is not None and (body["version"], body["lifecycle"], body["resolution"]) == (4, "open", None)
    history = store.story_history("story-1")
    assert [(h["action"], h["actor"], h["story_version"]) for h in history] == [
        ("acknowledge", "bob", 1),
        ("resolve", "bob", 2),
        ("reopen", "correlator", 4),
    ]
    assert history[-1]["detail"] == {"previous_resolution": "benign"}


def test_stored_bodies_read_back_as_their_json_dump(db_url: str) -> None:
    """What a stage batch stores (`apply_writes`) reads back as the model's JSON dump, key for key:
    unicode, nested lists and objects, numbers and nulls as they were, and a lone surrogate (no
    UTF-8 encoder or PostgreSQL takes one) as U+FFFD."""
    upgrade(db_url)
    store = Store(db_url)
    ocsf = {"observables": [{"name": "ünïcødé ✓ 𝔘", "values": [[1, 2.5, None], [], [True, '\n"\\']]}], "n": {}}
    clean = story(1).model_copy(update={"narrative": ["café → 東京", "emoji 🛡", ""], "ocsf": ocsf})
    broken = clean.model_copy(update={"story_id": "story-2", "narrative": ["before \ud800 after", "\udfff"]})
    writes = _Writes(
        artifacts=[("agents/bot", "apd", 1, T, clean), ("agents/bot", "apd", 2, T, broken)],
        stories=[(clean, None), (broken, None)],
    )
    apply_writes(store, [writes])
    expected = clean.model_dump(mode="json")
    assert store.artifact("agents/bot", "apd", 1) == expected
    assert store.story("story-1") == expected
    fixed = broken.model_dump(mode="json") | {"narrative": ["before \ufffd after", "\ufffd"]}
    assert store.artifact("agents/bot", "apd", 2) == fixed
    assert store.story("story-2") == fixed
    # A redelivered revision rewrites the same row with the new body (idempotent per revision).
    apply_writes(store, [_Writes(artifacts=[("agents/bot", "apd", 1, T, broken)])])
    assert store.artifact("agents/bot", "apd", 1) == fixed
    assert store.artifact_revisions("agents/bot", "apd") == [1, 2]


def test_workers_of_one_stage_heartbeat_at_once_without_conflict_or_lost_counts(db_url: str) -> None:
    """Two workers of a stage make its health row at their first heartbeat together: one insert
    must not end the other worker with a unique-key conflict, and neither's counts may be lost."""
    upgrade(db_url)
    stores = [Store(db_url) for _ in range(4)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def heartbeats(store: Store) -> None:
        try:
            start.wait()
            for _ in range(25):
                store.record_progress("ingest", 2, 1, 0, None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=heartbeats, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    [health] = stores[0].stage_health()
    assert (health["processed"], health["dead_letters"]) == (4 * 25 * 2, 4 * 25)
