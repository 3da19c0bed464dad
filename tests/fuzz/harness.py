"""The receiver under fuzzing: the real app and a real publisher, in process (shared by the CI
suites in tests/fuzz and the long run in bench/fuzz)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from edges.intake.config import SourceConfig
from edges.intake.otlp_receiver import create_app
from edges.intake.publish import RawPublisher
from runward.core.auth import TokenRegistry, parse_token_list

TOKEN = "fuzz-sender-token-0123456789"
ENDPOINTS: dict[str, str] = {
    "falco": "/v1/falco",
    "tetragon": "/v1/tetragon",
    "audit": "/v1/k8s-audit",
    "otlp-json": "/v1/traces",
    "otlp-protobuf": "/v1/traces",
}
CONTENT_TYPES = {"otlp-json": "application/json", "otlp-protobuf": "application/x-protobuf"}


def receiver(publisher: RawPublisher) -> TestClient:
    config = SourceConfig(requests_per_s=1e9, request_burst=10**9, bytes_per_s=1e12, byte_burst=10**12)
    app = create_app(config, publisher, tokens=TokenRegistry(parse_token_list(f"fuzz:{TOKEN}:sender")))
    # raise_server_exceptions=False: a crash must surface as the 500 a sender would see.
    return TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {TOKEN}"})


def poster(client: TestClient, target: str) -> Callable[[bytes], int]:
    headers = {"content-type": CONTENT_TYPES.get(target, "application/json")}

    def post(body: bytes) -> int:
        return client.post(ENDPOINTS[target], content=body, headers=headers).status_code

    return post
