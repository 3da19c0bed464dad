"""Authenticated intake: sender tokens from the shared token configuration, per-sender budgets,
and bodies streamed under a hard cap (chunked included)."""

from __future__ import annotations

import gzip
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from edges.intake.config import SourceConfig
from edges.intake.guard import IntakeRefused, SenderGuard
from edges.intake.otlp_receiver import create_app
from edges.intake.publish import RawPublisher
from runward.control.broker import free_port
from runward.core.auth import Role, TokenConfigError, TokenRegistry, parse_token_file, parse_token_list

SENSORS = Path(__file__).resolve().parents[1] / "data" / "bom" / "sensors"
SENDER = "falco-sidekick-token-0123456789"
OTHER = "tetragon-exporter-token-987654321"
VIEWER = "soc-viewer-token-0123456789abc"
TOKENS = TokenRegistry(parse_token_list(f"falco:{SENDER}:sender,tetragon:{OTHER}:sender,soc:{VIEWER}:viewer"))
ENDPOINTS = ["/v1/traces", "/v1/falco", "/v1/tetragon", "/v1/k8s-audit"]
FALCO = (SENSORS / "falco_alerts.jsonl").read_bytes()


@pytest.fixture(scope="module")
def publisher(kafka_bootstrap: str) -> Iterator[RawPublisher]:
    publisher = RawPublisher(kafka_bootstrap, "test-intake-guard")
    yield publisher
    publisher.close(timeout_s=5)


def _client(publisher: RawPublisher, config: SourceConfig | None = None, **kwargs: object) -> TestClient:
    return TestClient(create_app(config or SourceConfig(), publisher, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_intake_refuses_missing_unknown_and_non_sender_tokens(publisher: RawPublisher, path: str) -> None:
    client = _client(publisher, tokens=TOKENS)
    headers = {"content-type": "application/json"}
    for auth in (None, "Bearer wrong-token-value-xyz", f"Bearer {VIEWER}", f"Basic {SENDER}", "Bearer "):
        sent = {**headers, **({"Authorization": auth} if auth else {})}
        reply = client.post(path, content=b"{}", headers=sent)
        assert reply.status_code == 401, (path, auth, reply.text)
        assert reply.headers["www-authenticate"] == "Bearer"
        assert SENDER not in reply.text and VIEWER not in reply.text and "wrong-token-value" not in reply.text
    accepted = client.post(path, content=b"{}", headers={**headers, "Authorization": f"Bearer {SENDER}"})
    assert accepted.status_code not in (401, 403, 429) and accepted.status_code < 500


def test_without_sender_tokens_everything_is_refused_and_the_answer_says_how_to_fix_it(
    publisher: RawPublisher,
) -> None:
    client = _client(publisher, tokens=TokenRegistry(parse_token_list(f"soc:{VIEWER}:viewer")))
    reply = client.post("/v1/falco", content=FALCO, headers={"Authorization": f"Bearer {VIEWER}"})
    assert reply.status_code == 401
    reply = client.post("/v1/falco", content=FALCO)
    assert reply.status_code == 401 and "role sender" in reply.json()["error"]
    assert _client(publisher).post("/v1/tetragon", content=b"{}").status_code == 401  # no tokens at all


def test_mtls_verified_connection_needs_no_bearer_but_a_wrong_bearer_is_still_refused(
    publisher: RawPublisher,
) -> None:
    client = _client(publisher, mtls=True)
    assert client.post("/v1/falco", content=FALCO).status_code == 200
    assert client.post("/v1/falco", content=FALCO, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_otlp_refusals_are_otlp_status_bodies(publisher: RawPublisher) -> None:
    from google.rpc import status_pb2

    reply = _client(publisher, tokens=TOKENS).post(
        "/v1/traces", content=b"\x00", headers={"content-type": "application/x-protobuf"}
    )
    assert reply.status_code == 401 and reply.headers["content-type"] == "application/x-protobuf"
    assert "bearer token" in status_pb2.Status.FromString(reply.content).message


def test_token_configuration_knows_the_sender_role_and_the_api_refuses_it() -> None:
    tokens = parse_token_file(json.dumps([{"name": "edge", "token": SENDER, "role": "sender"}]), "tokens.json")
    assert tokens[0].role is Role.SENDER
    with pytest.raises(TokenConfigError) as err:
        parse_token_list(f"x:{SENDER}:admin")
    assert SENDER not in str(err.value) and "sender" in str(err.value)


def test_per_sender_rate_limit_is_429_with_retry_after_and_leaves_other_senders_alone(
    publisher: RawPublisher,
) -> None:
    config = SourceConfig(requests_per_s=0.5, request_burst=3)
    client = _client(publisher, config, tokens=TOKENS)
    noisy = {"Authorization": f"Bearer {SENDER}"}
    codes = [client.post("/v1/falco", content=FALCO, headers=noisy).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    limited = client.post("/v1/falco", content=FALCO, headers=noisy)
    assert int(limited.headers["retry-after"]) >= 1 and "falco" in limited.json()["error"]
    assert client.post("/v1/falco", content=FALCO, headers={"Authorization": f"Bearer {OTHER}"}).status_code == 200


def test_byte_budget_per_sender() -> None:
    now = [0.0]
    guard = SenderGuard(TOKENS, bytes_per_s=1000, byte_burst=4000, clock=lambda: now[0])
    guard.admit("falco", 3000)
    with pytest.raises(IntakeRefused) as refused:
        guard.admit("falco", 3000)
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "2"
    guard.admit("tetragon", 3000)  # budgets are per sender
    now[0] = 2.0
    guard.admit("falco", 3000)


def test_declared_oversize_gzip_bomb_and_unknown_encoding(publisher: RawPublisher) -> None:
    config = SourceConfig(max_body_bytes=64 * 1024)
    client = _client(publisher, config, tokens=TOKENS)
    auth = {"Authorization": f"Bearer {SENDER}"}
    assert client.post("/v1/falco", content=b"x" * (64 * 1024 + 1), headers=auth).status_code == 413
    bomb = gzip.compress(b"[" + b" " * (10 * 1024 * 1024) + b"]")
    reply = client.post("/v1/falco", content=bomb, headers={**auth, "content-encoding": "gzip"})
    assert reply.status_code == 413 and "decompressed" in reply.json()["error"]
    reply = client.post("/v1/falco", content=FALCO, headers={**auth, "content-encoding": "br"})
    assert reply.status_code == 415
    reply = client.post("/v1/falco", content=gzip.compress(FALCO), headers={**auth, "content-encoding": "gzip"})
    assert reply.status_code == 200 and reply.json()["accepted"] == 4


@pytest.fixture
def live_receiver(publisher: RawPublisher) -> Iterator[int]:
    port = free_port()
    app = create_app(SourceConfig(max_body_bytes=1024 * 1024), publisher, tokens=TOKENS)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def _chunked_upload(port: int, token: str, total: int, chunk: int = 64 * 1024) -> tuple[bytes, int]:
    """Send a chunked body of `total` bytes, stopping as soon as the server answers; return the
    answer and how many body bytes were sent by then."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /v1/falco HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        + f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    sent, block = 0, b"[" + b" " * (chunk - 1)
    try:
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered
            sock.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n")
            sent += len(block)
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(10)
    answer = b""
    while b"\r\n\r\n" not in answer:
        data = sock.recv(65536)
        if not data:
            break
        answer += data
    sock.close()
    return answer, sent


def test_chunked_body_over_the_cap_is_cut_off_with_413_not_read_whole(live_receiver: int) -> None:
    total = 512 * 1024 * 1024  # half a gigabyte offered; the cap is 1 MiB
    answer, sent = _chunked_upload(live_receiver, SENDER, total)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 64 * 1024 * 1024, f"server kept reading: {sent} bytes sent before the answer"


def test_chunked_body_without_a_token_is_refused_before_it_is_read(live_receiver: int) -> None:
    answer, sent = _chunked_upload(live_receiver, "not-a-sender", 512 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert sent < 64 * 1024 * 1024
