"""The published contract: every route documented, bearer auth declared, /docs served."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from .support import VIEWER_TOKEN, no_secret_in

ROUTES = {
    ("get", "/v1/stages"),
    ("get", "/v1/dead-letters"),
    ("get", "/v1/agents"),
    ("get", "/v1/agents/{namespace}/{name}"),
    ("get", "/v1/agents/{namespace}/{name}/apd"),
    ("get", "/v1/agents/{namespace}/{name}/aibom"),
    ("get", "/v1/agents/{namespace}/{name}/policies"),
    ("get", "/v1/agents/{namespace}/{name}/reconciliation"),
    ("get", "/v1/agents/{namespace}/{name}/bom-delta"),
    ("get", "/v1/attack-stories"),
    ("get", "/v1/attack-stories/{story_id}"),
    ("post", "/v1/agents/{namespace}/{name}/promotion"),
    ("get", "/v1/agents/{namespace}/{name}/readiness"),
    ("get", "/v1/agents/{namespace}/{name}/waivers"),
    ("post", "/v1/agents/{namespace}/{name}/waivers"),
    ("get", "/v1/history"),
    ("get", "/v1/history/export"),
    ("get", "/v1/history/verify"),
}


def test_openapi_lists_routes_and_bearer_scheme(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operations = {(method, path): op for path, item in spec["paths"].items() for method, op in item.items()}
    assert set(operations) >= ROUTES
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for route in ROUTES:
        op = operations[route]
        assert op["security"] == [{"bearerAuth": []}], route
        assert op.get("summary"), route
        assert "401" in op["responses"], route
    assert "security" not in operations[("get", "/healthz")]
    promotion = operations[("post", "/v1/agents/{namespace}/{name}/promotion")]
    assert {"202", "403", "404", "409", "503"} <= set(promotion["responses"])
    aibom = operations[("get", "/v1/agents/{namespace}/{name}/aibom")]
    assert "application/vnd.cyclonedx+json; version=1.6" in aibom["responses"]["200"]["content"]


def test_docs_page_is_served(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "swagger-ui" in response.text.lower()


def test_the_leak_guard_itself_catches_a_token() -> None:
    # Every test client runs no_secret_in on each response; prove it would fail on a leak.
    leaky = httpx.Response(200, text=f"oops {VIEWER_TOKEN}", request=httpx.Request("GET", "http://x/"))
    with pytest.raises(AssertionError, match="leaked a token"):
        no_secret_in(leaky)
    echoed_header = httpx.Response(200, headers={"x-echo": VIEWER_TOKEN}, request=httpx.Request("GET", "http://x/"))
    with pytest.raises(AssertionError):
        no_secret_in(echoed_header)
