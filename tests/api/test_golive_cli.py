"""`runward readiness / waive / promote / history` against the real API served over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from runward.control.api.app import create_app
from runward.control.broker import free_port
from runward.control.cli import main
from runward.core.config import Settings
from runward.core.contracts import AttackStory, EnforcementMode, Signal, StoryStatus, Surface, WindowStatus, utcnow
from runward.core.store import Store
from runward.core.store.schema import HistoryRow, StoryEventRow
from tests.enforcer.proofs import proof_of

from .support import APPROVER_TOKEN, NOW, VIEWER_TOKEN, SpyPublisher, apd, bundle, put, story
from .test_golive import tokens_file


@pytest.fixture
def api_url(store: Store, publisher: SpyPublisher, tmp_path: Path, kafka_bootstrap: str) -> Iterator[str]:
    settings = Settings(
        api_tokens="",
        tokens_file=tokens_file(tmp_path),
        kafka=kafka_bootstrap,
        audit_soak_s=3600,
        promotion_key="promotion-key-for-golive-cli-tests-0123456789",
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, store=store, publisher=publisher), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def run(url: str, token: str, *argv: str) -> int:
    return main([*argv, "--api", url, "--token", token])


def test_readiness_exit_code_gates_a_rollout(
    api_url: str, store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(api_url, VIEWER_TOKEN, "readiness", "shop/retriever") == 1
    table = capsys.readouterr().out
    assert "shop/retriever: NOT READY for enforce (mode audit)" in table
    assert "policies proven" in table and "FAIL" in table and "PASS" in table

    report = tmp_path / "ticket.md"
    assert run(api_url, VIEWER_TOKEN, "readiness", "shop/retriever", "--format", "markdown", "--out", str(report)) == 1
    assert report.read_text().startswith("# Go-live readiness: shop/retriever")
    assert run(api_url, VIEWER_TOKEN, "readiness", "shop/retriever", "--format", "json") == 1
    assert json.loads(capsys.readouterr().out)["ready"] is False

    assert run(api_url, VIEWER_TOKEN, "readiness", "ops/helper", "--target", "audit") == 1  # open stories
    # Exit 0 when ready: an agent whose window is complete, with no story, may go to audit.
    store.touch_agent("shop/ready", "ready-sa", NOW - timedelta(days=5))
    put(store, "apd", apd("shop/ready", 1, WindowStatus.COMPLETE))
    assert run(api_url, VIEWER_TOKEN, "readiness", "shop/ready", "--target", "audit") == 0
    assert "shop/ready: READY for audit (mode observe)" in capsys.readouterr().out
    assert run(api_url, VIEWER_TOKEN, "readiness", "shop/ghost") == 2
    assert "agent shop/ghost not found" in capsys.readouterr().err
    assert main(["readiness", "shop/retriever", "--api", api_url]) == 2


def test_waive_promote_and_history_from_the_command_line(
    api_url: str, store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    until = (utcnow() + timedelta(days=7)).date().isoformat()
    assert (
        run(
            api_url,
            APPROVER_TOKEN,
            "waive",
            "shop/retriever",
            "--check",
            "reconciliation_reviewed",
            "--reason",
            "PR 481",
            "--until",
            until,
        )
        == 0
    )
    assert "signed by Ada Platform <ada@example.com>" in capsys.readouterr().out
    review = ["--check", "aibom_reviewed", "--subject", "undeclared:mcp:weather", "--reason", "ours"]
    assert run(api_url, APPROVER_TOKEN, "waive", "shop/retriever", *review) == 0
    assert (
        run(
            api_url,
            APPROVER_TOKEN,
            "waive",
            "shop/retriever",
            "--check",
            "audit_soak",
            "--reason",
            "x",
            "--until",
            until,
        )
        == 1
    )
    assert "cannot be waived" in capsys.readouterr().err
    assert (
        run(
            api_url,
            VIEWER_TOKEN,
            "waive",
            "shop/retriever",
            "--check",
            "service_account",
            "--reason",
            "x",
            "--until",
            until,
        )
        == 2
    )

    # Only the unproven policies hold enforce now; the gate says so and nothing is published.
    assert run(api_url, APPROVER_TOKEN, "promote", "shop/retriever", "--to", "enforce", "--reason", "go live") == 1
    refused = capsys.readouterr().err
    assert "refused by the gate" in refused and "no passing proof for APD revision 2: run `runward prove" in refused

    assert run(api_url, APPROVER_TOKEN, "promote", "shop/retriever", "--to", "observe", "--reason", "roll back") == 0
    assert "shop/retriever -> observe accepted, signed by Ada Platform <ada@example.com>" in capsys.readouterr().out

    assert run(api_url, VIEWER_TOKEN, "history", "--deployment", "shop/retriever") == 0
    listing = capsys.readouterr().out
    assert "waiver" in listing and "review" in listing and "promotion" in listing and "roll back" in listing

    export = tmp_path / "history.jsonl"
    assert run(api_url, VIEWER_TOKEN, "history", "--export", str(export), "--verify") == 0
    assert len(export.read_text().splitlines()) == 3
    assert "history chain intact: 3 entries" in capsys.readouterr().out

    with store.session() as s:
        s.execute(sa.update(HistoryRow).where(HistoryRow.seq == 2).values(reason="not ours after all"))
    assert run(api_url, VIEWER_TOKEN, "history", "--verify") == 1
    assert "history chain BROKEN at entry 2" in capsys.readouterr().err


def test_story_resolutions_and_baseline_acceptances_are_in_the_one_verified_chain(
    api_url: str, store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every story lifecycle change and baseline acceptance lands in the go-live chain: listed by
    GET /v1/history and `runward history`, and an edit of either the chain row or the story's own
    event row is caught by verify."""
    signal = Signal(
        signal_id="sig-backup",
        deployment="ops/helper",
        ts=NOW,
        surface=Surface.NETWORK,
        title="outside APD baseline: egress:backup.example:443/tcp",
        behaviour="egress:backup.example:443/tcp",
        severity=3,
        source_event="e",
    )
    store.put_story(
        story("st-backup", "ops/helper", StoryStatus.POTENTIAL_COMPROMISE, NOW).model_copy(update={"signals": [signal]})
    )
    ada = {"Authorization": f"Bearer {APPROVER_TOKEN}"}
    resolved = httpx.post(
        f"{api_url}/v1/stories/st-live/resolve",
        headers=ada,
        json={"reason": "red team exercise", "resolution": "benign"},
    )
    assert resolved.status_code == 200, resolved.text
    accepted = httpx.post(f"{api_url}/v1/stories/st-backup/accept-baseline", headers=ada, json={"reason": "backups"})
    assert accepted.status_code == 200, accepted.text

    viewer = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    entries = httpx.get(f"{api_url}/v1/history", headers=viewer, params={"deployment": "ops/helper"}).json()
    assert [(e["kind"], e["actor"], e["reason"]) for e in entries] == [
        ("story_resolution", "Ada Platform <ada@example.com>", "red team exercise"),
        ("baseline_acceptance", "Ada Platform <ada@example.com>", "backups"),
    ]
    assert entries[0]["body"]["story_id"] == "st-live" and entries[0]["body"]["resolution"] == "benign"
    assert entries[1]["body"]["detail"] == {"behaviours": ["egress:backup.example:443/tcp"]}
    monkeypatch.setenv("COLUMNS", "300")  # one table row per line, words unwrapped
    assert run(api_url, VIEWER_TOKEN, "history", "--deployment", "ops/helper") == 0
    listing = capsys.readouterr().out
    assert "story_resolution" in listing and "baseline_acceptance" in listing and "red team" in listing
    assert run(api_url, VIEWER_TOKEN, "history", "--verify") == 0
    assert "history chain intact: 2 entries" in capsys.readouterr().out

    # The story's own view is rewritten: the resolution becomes a true positive after the fact.
    with store.session() as s:
        s.execute(
            sa.update(StoryEventRow).where(StoryEventRow.story_id == "st-live").values(resolution="false_positive")
        )
    assert run(api_url, VIEWER_TOKEN, "history", "--verify") == 1
    assert "history chain BROKEN at entry 1: story event" in capsys.readouterr().err
    with store.session() as s:
        s.execute(sa.update(StoryEventRow).where(StoryEventRow.story_id == "st-live").values(resolution="benign"))
    assert run(api_url, VIEWER_TOKEN, "history", "--verify") == 0
    capsys.readouterr()

    # The chain row of the baseline acceptance is rewritten: who accepted it.
    with store.session() as s:
        s.execute(sa.update(HistoryRow).where(HistoryRow.seq == 2).values(actor="Somebody Else"))
    assert run(api_url, VIEWER_TOKEN, "history", "--verify") == 1
    assert "history chain BROKEN at entry 2" in capsys.readouterr().err


def test_story_events_deleted_or_smuggled_in_break_verification(store: Store) -> None:
    from runward.core.contracts import Resolution, StoryLifecycle
    from runward.core.store import history

    seeded = AttackStory.model_validate(store.story("st-held"))
    done = seeded.model_copy(update={"lifecycle": StoryLifecycle.ACKNOWLEDGED})
    assert store.transition_story(done, seeded.version, "acknowledge", "Ada", "looking", {"from": "open"})
    # New linked signals reopen a resolved story: the correlator's reopen is chained too.
    closed = done.model_copy(update={"lifecycle": StoryLifecycle.RESOLVED, "resolution": Resolution.BENIGN})
    assert store.transition_story(closed, seeded.version, "resolve", "Ada", "benign", {"from": "acknowledged"})
    store.put_story(seeded.model_copy(update={"version": seeded.version + 1}))
    kinds = [(e["kind"], e["actor"]) for e in history.entries(store)]
    assert kinds == [("story_acknowledgement", "Ada"), ("story_resolution", "Ada"), ("story_reopen", "correlator")]
    assert history.verify(store).ok

    with store.session() as s:
        s.add(
            StoryEventRow(
                story_id="st-held",
                deployment="ops/helper",
                action="resolve",
                actor="Mallory",
                at=utcnow(),
                story_version=9,
                resolution="benign",
                reason="nothing to see",
                detail={},
            )
        )
    smuggled = history.verify(store)
    assert not smuggled.ok and "is in no history entry: it was written outside the API" in (smuggled.problem or "")
    with store.session() as s:
        s.execute(sa.delete(StoryEventRow).where(StoryEventRow.actor.in_(["Mallory", "correlator"])))
    deleted = history.verify(store)
    assert not deleted.ok and deleted.broken_at == 3 and "which was deleted" in (deleted.problem or "")


def test_the_demo_closes_with_each_agents_readiness_table(
    store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`runward demo` (make run) ends with golive.show_readiness: the same table `runward readiness` prints."""
    from runward.control.cli import golive

    monkeypatch.setenv("COLUMNS", "300")
    golive.show_readiness(store, 3600)
    shown = capsys.readouterr().out
    for agent in ("shop/retriever", "shop/planner", "ops/helper", "ops/fresh"):
        assert f"{agent}: NOT READY for enforce" in shown
    assert "shop/retriever: NOT READY for enforce (mode audit)" in shown
    assert "policies proven" in shown and "FAIL" in shown and "PASS" in shown


def test_accept_policy_from_the_command_line(api_url: str, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    store.touch_agent("shop/frozen-cli", "frozen-sa", NOW - timedelta(days=5))
    put(store, "apd", apd("shop/frozen-cli", 3, WindowStatus.COMPLETE))
    put(store, "policy", bundle("shop/frozen-cli", 1, EnforcementMode.ENFORCE))
    accept = ["accept-policy", "shop/frozen-cli", "--reason", "reviewed the new MCP server"]
    assert run(api_url, APPROVER_TOKEN, *accept, "--apd-revision", "2") == 1
    assert "APD revision 2 is not the latest (3); review and accept 3" in capsys.readouterr().err
    # Accepting a revision into enforce needs its passing proof, as promoting does (gate rule 6).
    assert run(api_url, APPROVER_TOKEN, *accept, "--apd-revision", "3") == 1
    assert "no passing proof for APD revision 3: run `runward prove shop/frozen-cli`" in capsys.readouterr().err
    proof = proof_of(apd("shop/frozen-cli", 3, WindowStatus.COMPLETE)).model_dump(mode="json")
    store.put_artifact("shop/frozen-cli", "proof", 1, NOW, {**proof, "number": 1})
    assert run(api_url, APPROVER_TOKEN, *accept, "--apd-revision", "3") == 0
    assert "APD revision 3 accepted into the enforced policies, signed by Ada Platform" in capsys.readouterr().out
