"""ServiceAccount posture as the platform team sees it in the API."""

from __future__ import annotations

from fastapi.testclient import TestClient

from runward.control.api.app import create_app
from runward.core.config import Settings
from runward.core.contracts import utcnow
from runward.core.store import Store, upgrade

TOKEN = "viewer-token-posture-0123456789"


def test_shared_and_default_service_accounts_are_flagged(db_url: str) -> None:
    upgrade(db_url)
    store = Store(db_url)
    for deployment, sa in [
        ("agents/support-bot", "shared-agent"),
        ("agents/triage-bot", "shared-agent"),
        ("agents/lonely", "default"),
        ("agents/good", "good"),
    ]:
        store.touch_agent(deployment, sa, utcnow())
    client = TestClient(create_app(Settings(db=db_url, api_tokens=f"ops:{TOKEN}:viewer")))
    auth = {"Authorization": f"Bearer {TOKEN}"}

    shared = client.get("/v1/agents/agents/support-bot/posture", headers=auth).json()
    assert not shared["compliant"]
    assert any("agents/triage-bot" in f["related_deployments"] for f in shared["findings"])
    default = client.get("/v1/agents/agents/lonely/posture", headers=auth).json()
    assert not default["compliant"] and any("default" in f["message"] for f in default["findings"])
    assert client.get("/v1/agents/agents/good/posture", headers=auth).json()["compliant"] is True
    assert client.get("/v1/agents/agents/nope/posture", headers=auth).status_code == 404
    assert client.get("/v1/agents/agents/good/posture").status_code == 401
