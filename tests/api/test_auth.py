"""Authentication and authorisation: never open, never echoing a token."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runward.control.api.app import create_app
from runward.control.api.auth import TokenConfigError, load_tokens
from runward.core.config import Settings
from runward.core.store import Store

from .support import (
    APPROVER,
    APPROVER_TOKEN,
    TOKEN_SPEC,
    VIEWER,
    VIEWER_TOKEN,
    WRONG_TOKEN,
    SpyPublisher,
    make_client,
)

READ_PATHS = [
    "/v1/stages",
    "/v1/dead-letters",
    "/v1/agents",
    "/v1/agents/shop/retriever",
    "/v1/agents/shop/retriever/aibom",
    "/v1/attack-stories",
    "/v1/attack-stories/st-old",
]


@pytest.mark.parametrize("path", READ_PATHS)
def test_reads_need_a_token(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "missing bearer token" in response.json()["detail"]


def test_wrong_token_is_401_and_not_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        response = client.get("/v1/agents", headers={"Authorization": f"Bearer {WRONG_TOKEN}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "not valid" in response.json()["detail"]
    assert "rejected an unknown bearer token" in caplog.text
    assert WRONG_TOKEN not in caplog.text


@pytest.mark.parametrize(
    "header",
    [
        f"Basic {VIEWER_TOKEN}",
        f"Bearer {VIEWER_TOKEN[:-1]}",
        f"Bearer {VIEWER_TOKEN}x",
        f"Bearer {VIEWER_TOKEN.upper()}",
    ],
)
def test_other_schemes_and_near_misses_are_rejected(client: TestClient, header: str) -> None:
    assert client.get("/v1/agents", headers={"Authorization": header}).status_code == 401


def test_auth_comes_before_input_validation(client: TestClient) -> None:
    # An anonymous caller learns nothing about which inputs are valid.
    assert client.get("/v1/agents/Bad_Name/x").status_code == 401
    assert client.post("/v1/agents/shop/retriever/promotion", json={"mode": "bogus"}).status_code == 401


def test_viewer_cannot_promote(client: TestClient, publisher: SpyPublisher) -> None:
    response = client.post(
        "/v1/agents/shop/retriever/promotion", headers=VIEWER, json={"mode": "enforce", "reason": "looks fine"}
    )
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert "approver role" in detail and "alice" in detail and "viewer" in detail
    assert publisher.calls == []


def test_healthz_is_open_and_says_nothing_else(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_no_tokens_configured_refuses_everything(store: Store, publisher: SpyPublisher) -> None:
    app = create_app(Settings(api_tokens="", tokens_file=None), store=store, publisher=publisher)
    with make_client(app) as client:
        for headers in ({}, VIEWER, {"Authorization": "Bearer "}):
            response = client.get("/v1/agents", headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert "RUNWARD_API_TOKENS" in response.json()["detail"]
        assert client.get("/healthz").status_code == 200


def test_tokens_file(tmp_path: Path, store: Store, publisher: SpyPublisher) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps(
            [
                {"name": "carol", "token": APPROVER_TOKEN, "role": "approver"},
                {"name": "dave", "token": VIEWER_TOKEN, "role": "viewer"},
            ]
        )
    )
    app = create_app(Settings(api_tokens="", tokens_file=path), store=store, publisher=publisher)
    with make_client(app) as client:
        assert client.get("/v1/agents", headers=VIEWER).status_code == 200
        forbidden = client.post(
            "/v1/agents/shop/retriever/promotion", headers=VIEWER, json={"mode": "observe", "reason": "step back"}
        )
        assert forbidden.status_code == 403 and "dave" in forbidden.json()["detail"]


@pytest.mark.parametrize(
    "spec",
    [
        f"alice:{VIEWER_TOKEN}",  # no role
        f"alice:{VIEWER_TOKEN}:admin",  # unknown role
        f":{VIEWER_TOKEN}:viewer",  # no name
        f"a:{VIEWER_TOKEN}:viewer,b:{VIEWER_TOKEN}:approver",  # shared token
    ],
)
def test_bad_token_config_fails_without_quoting_the_token(spec: str) -> None:
    with pytest.raises(TokenConfigError) as info:
        load_tokens(Settings(api_tokens=spec))
    assert VIEWER_TOKEN not in str(info.value)


def test_bad_tokens_file_fails_without_quoting_the_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(f'[{{"name": "x", "token": "{VIEWER_TOKEN}", "role": "viewer"}}')  # unterminated
    with pytest.raises(TokenConfigError) as info:
        load_tokens(Settings(tokens_file=path))
    assert "not valid JSON" in str(info.value) and VIEWER_TOKEN not in str(info.value)


def test_rejected_body_is_not_echoed(client: TestClient) -> None:
    # FastAPI's default 422 quotes the input; a token pasted into a body must not come back.
    response = client.post(
        "/v1/agents/shop/retriever/promotion", headers=APPROVER, json={"mode": APPROVER_TOKEN, "reason": "x"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "mode"]


def test_store_failure_is_503_without_driver_details(db_url: str, publisher: SpyPublisher) -> None:
    unmigrated = Store(db_url, check_schema=False)
    app = create_app(Settings(api_tokens=TOKEN_SPEC), store=unmigrated, publisher=publisher)
    with make_client(app) as client:
        response = client.get("/v1/agents", headers=VIEWER)
    assert response.status_code == 503
    assert response.json() == {
        "detail": "the store (database) is unavailable or not migrated (run `runward db upgrade`); see the API log"
    }
    unmigrated.engine.dispose()


def test_a_sender_token_only_posts_telemetry_it_cannot_read_the_api(store: Store, publisher: SpyPublisher) -> None:
    sender = "edge-sender-token-0123456789"
    app = create_app(Settings(api_tokens=f"{TOKEN_SPEC},edge:{sender}:sender"), store=store, publisher=publisher)
    with make_client(app) as client:
        response = client.get("/v1/agents", headers={"Authorization": f"Bearer {sender}"})
    assert response.status_code == 403
    assert "sender role" in response.json()["detail"] and sender not in response.text
