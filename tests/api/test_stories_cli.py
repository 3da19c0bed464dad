"""`runward stories` against the real API served by uvicorn on 127.0.0.1 (seeded store, real broker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from runward.control.api.app import create_app
from runward.control.broker import free_port
from runward.control.cli import main
from runward.core.config import Settings
from runward.core.store import Store

from .support import APPROVER_TOKEN, TOKEN_SPEC, VIEWER_TOKEN, SpyPublisher


@pytest.fixture
def api_url(store: Store, publisher: SpyPublisher, kafka_bootstrap: str) -> Iterator[str]:
    app = create_app(Settings(api_tokens=TOKEN_SPEC, kafka=kafka_bootstrap), store=store, publisher=publisher)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the API did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_stories_are_worked_from_the_cli(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    approver = ["--api", api_url, "--token", APPROVER_TOKEN]
    assert main(["stories", "acknowledge", "st-live", "--reason", "on it", *approver]) == 0
    assert "acknowledged" in capsys.readouterr().out
    args = ["stories", "resolve", "st-live", "--resolution", "true_positive", "--reason", "contained", *approver]
    assert main(args) == 0
    assert "resolved (true_positive)" in capsys.readouterr().out
    assert main(["stories", "show", "st-live", "--api", api_url, "--token", VIEWER_TOKEN]) == 0
    shown = capsys.readouterr().out
    assert "bob acknowledge: on it" in shown and "bob resolve true_positive: contained" in shown
    # A viewer may read but not act: the API's 403 is one line, exit status 2.
    assert main(["stories", "reopen", "st-live", "--reason", "x", "--api", api_url, "--token", VIEWER_TOKEN]) == 2
    assert "403" in capsys.readouterr().err
    assert main(["stories", "list", "--deployment", "ops/helper", "--api", api_url, "--token", VIEWER_TOKEN]) == 0
    assert "st-live  ops/helper" in capsys.readouterr().out
