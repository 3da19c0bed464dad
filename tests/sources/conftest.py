"""The OTLP receiver on a real broker, shared by the intake suites."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from edges.intake.config import SourceConfig
from edges.intake.otlp_receiver import create_app
from edges.intake.publish import RawPublisher
from runward.control.broker import free_port
from runward.core.auth import TokenRegistry, parse_token_list

SENDER_TOKEN = "otlp-test-sender-0123456789"
TOKENS = TokenRegistry(parse_token_list(f"agent-sidecar:{SENDER_TOKEN}:sender"))
AUTH = {"Authorization": f"Bearer {SENDER_TOKEN}"}


@pytest.fixture(scope="module")
def receiver(kafka_bootstrap: str) -> Iterator[str]:
    publisher = RawPublisher(kafka_bootstrap, "test-otlp-receiver")
    config = SourceConfig(senders={"127.0.0.1": "agents/local-agent"}, capture_off=["agents/quiet-agent"])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config, publisher, tokens=TOKENS), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "receiver did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        publisher.close(timeout_s=5)
