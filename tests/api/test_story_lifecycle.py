"""Story lifecycle on the API: acknowledge, resolve, reopen (approver only), the append-only
history in the store, OCSF status, the promotion gate, and a reopen by new linked signals."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from runward.core.contracts import AttackStory, StoryLifecycle, StoryStatus
from runward.core.store import Store
from services.enforcer import promotion_gate

from .support import APPROVER, NOW, VIEWER, SpyPublisher, story


def test_a_story_is_acknowledged_resolved_and_reopened_by_an_approver_with_history(
    client: TestClient, store: Store, publisher: SpyPublisher
) -> None:
    base = "/v1/stories/st-live"
    assert client.post(f"{base}/acknowledge", json={"reason": "looking"}, headers=VIEWER).status_code == 403
    ack = client.post(f"{base}/acknowledge", json={"reason": "on it"}, headers=APPROVER)
    assert ack.status_code == 200 and ack.json()["lifecycle"] == "acknowledged"
    assert ack.json()["ocsf"]["status_id"] == 2  # In Progress
    assert client.post(f"{base}/acknowledge", json={"reason": "again"}, headers=APPROVER).status_code == 409
    no_resolution = client.post(f"{base}/resolve", json={"reason": "x"}, headers=APPROVER)
    assert no_resolution.status_code == 422
    resolved = client.post(
        f"{base}/resolve", json={"reason": "pentest by the red team", "resolution": "benign"}, headers=APPROVER
    )
    assert resolved.status_code == 200 and resolved.json()["ocsf"]["status_id"] == 4  # Resolved
    # The gate is no longer held by it (the API's view and the enforcer's, from the re-published story).
    held = client.get("/v1/agents/ops/helper", headers=VIEWER).json()["open_story_ids"]
    assert "st-live" not in held
    published = [r for topic, _, r in publisher.calls if topic == "runward.attack-stories"]
    assert [r.lifecycle for r in published] == [StoryLifecycle.ACKNOWLEDGED, StoryLifecycle.RESOLVED]
    assert not promotion_gate.holds(published[-1])

    reopened = client.post(f"{base}/reopen", json={"reason": "same host again"}, headers=APPROVER)
    assert reopened.status_code == 200 and reopened.json()["ocsf"]["status_id"] == 1
    history = client.get(f"{base}/history", headers=VIEWER).json()
    assert [(h["action"], h["actor"]) for h in history] == [
        ("acknowledge", "bob"),
        ("resolve", "bob"),
        ("reopen", "bob"),
    ]
    assert history[1]["resolution"] == "benign" and history[1]["reason"] == "pentest by the red team"
    assert client.post("/v1/stories/nope/acknowledge", json={"reason": "x"}, headers=APPROVER).status_code == 404


def test_false_positive_is_suppressed_and_new_linked_signals_reopen_it(client: TestClient, store: Store) -> None:
    closed = client.post(
        "/v1/stories/st-held/resolve",
        json={"reason": "the agent's new export job", "resolution": "false_positive"},
        headers=APPROVER,
    )
    assert closed.status_code == 200 and closed.json()["ocsf"]["status_id"] == 3  # Suppressed
    # The correlator grows the story: a signal joined, so the story is open again, in the history too.
    grown = story("st-held", "ops/helper", StoryStatus.POTENTIAL_COMPROMISE, NOW)
    store.put_story(grown.model_copy(update={"version": 2}))
    again = AttackStory.model_validate(store.story("st-held"))
    assert again.lifecycle is StoryLifecycle.OPEN and promotion_gate.holds(again)
    history = store.story_history("st-held")
    assert [(h["action"], h["actor"]) for h in history] == [("resolve", "bob"), ("reopen", "correlator")]
    assert history[-1]["detail"]["previous_resolution"] == "false_positive"


def test_a_story_that_grew_meanwhile_is_not_closed_unseen(store: Store) -> None:
    body = AttackStory.model_validate(store.story("st-live"))
    grown = body.model_copy(update={"version": body.version + 1, "last_seen": body.last_seen + timedelta(minutes=1)})
    store.put_story(grown)
    closed = body.model_copy(update={"lifecycle": StoryLifecycle.RESOLVED})
    assert not store.transition_story(closed, body.version, "resolve", "bob", "stale view", {})
    assert store.story_history("st-live") == []


def test_an_approver_accepts_a_storys_behaviours_into_the_baseline_audited(
    client: TestClient, store: Store, publisher: SpyPublisher
) -> None:
    from runward.core.contracts import BaselineAcceptInfo, Signal, Surface

    signal = Signal(
        signal_id="sig-fp",
        deployment="ops/helper",
        ts=NOW,
        surface=Surface.NETWORK,
        title="outside APD baseline: egress:backup.example:443/tcp",
        behaviour="egress:backup.example:443/tcp",
        severity=3,
        source_event="e",
    )
    base = story("st-fp", "ops/helper", StoryStatus.POTENTIAL_COMPROMISE, NOW)
    store.put_story(base.model_copy(update={"signals": [signal]}))
    assert client.post("/v1/stories/st-fp/accept-baseline", json={"reason": "x"}, headers=VIEWER).status_code == 403
    response = client.post("/v1/stories/st-fp/accept-baseline", json={"reason": "nightly backup"}, headers=APPROVER)
    assert response.status_code == 200 and response.json()["behaviours"] == ["egress:backup.example:443/tcp"]
    [(topic, key, event)] = [c for c in publisher.calls if c[0] == "runward.events.enriched"]
    assert key == "ops/helper" and isinstance(event.detail, BaselineAcceptInfo) and event.detail.approver == "bob"
    [entry] = store.story_history("st-fp")
    assert (entry["action"], entry["actor"], entry["reason"]) == ("accept_baseline", "bob", "nightly backup")
    assert entry["detail"]["behaviours"] == ["egress:backup.example:443/tcp"]


def test_acceptance_takes_the_behaviours_of_signals_the_story_no_longer_tells(
    client: TestClient, store: Store, publisher: SpyPublisher
) -> None:
    # A long story tells its latest 20 signals; the correlator keeps the behaviours of all of them.
    from runward.core.contracts import Signal, Surface

    latest = Signal(
        signal_id="sig-latest",
        deployment="ops/helper",
        ts=NOW,
        surface=Surface.NETWORK,
        title="outside APD baseline: dns:late.example",
        behaviour="dns:late.example",
        severity=3,
        source_event="e",
    )
    base = story("st-long", "ops/helper", StoryStatus.POTENTIAL_COMPROMISE, NOW)
    told = ["dns:early.example", "exec:/usr/bin/rsync"]
    store.put_story(
        base.model_copy(
            update={"signals": [latest], "behaviours": told, "signal_count": 40, "behaviours_truncated": True}
        )
    )
    response = client.post("/v1/stories/st-long/accept-baseline", json={"reason": "cron job"}, headers=APPROVER)
    assert response.status_code == 200, response.text
    assert response.json()["behaviours"] == ["dns:early.example", "dns:late.example", "exec:/usr/bin/rsync"]
    assert response.json()["truncated"] is True
