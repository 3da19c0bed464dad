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
from runward.core.contracts import WindowStatus, utcnow
from runward.core.store import Store
from runward.core.store.schema import HistoryRow

from .support import APPROVER_TOKEN, NOW, VIEWER_TOKEN, SpyPublisher, apd, put
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
