"""Read endpoints against a store filled with real contract records, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from runward.core.contracts import StoryStatus

from .support import APPROVER, CYCLONEDX, DEAD_LETTER_PAYLOAD, RECONCILIATION, VIEWER


def test_stages_report_staleness_and_not_started(client: TestClient) -> None:
    response = client.get("/v1/stages", headers=VIEWER)
    assert response.status_code == 200
    stages = {s["stage"]: s for s in response.json()}
    assert list(stages) == ["ingest", "bom", "profiler", "correlator", "enforcer"]
    ingest = stages["ingest"]
    assert [ingest[k] for k in ("status", "stale", "processed", "lag", "dead_letters")] == ["running", False, 120, 3, 1]
    assert ingest["last_record_at"] is not None
    assert (stages["profiler"]["status"], stages["profiler"]["stale"]) == ("stale", True)
    assert stages["profiler"]["processed"] == 80
    for name in ("bom", "correlator", "enforcer"):
        assert stages[name]["status"] == "not started"
        assert stages[name]["heartbeat_at"] is None


def test_dead_letters_never_serve_the_payload(client: TestClient) -> None:
    response = client.get("/v1/dead-letters", headers=VIEWER)
    assert response.status_code == 200
    [letter] = response.json()
    assert letter["stage"] == "ingest"
    assert (letter["topic"], letter["partition"], letter["offset"]) == ("runward.raw.llm", 2, 41)
    assert letter["reason"].startswith("not valid JSON")
    assert "payload" not in letter
    assert DEAD_LETTER_PAYLOAD not in response.text
    assert client.get("/v1/dead-letters?stage=profiler", headers=VIEWER).json() == []
    assert client.get("/v1/dead-letters?stage=DROP TABLE", headers=VIEWER).status_code == 422


def test_agent_list(client: TestClient) -> None:
    response = client.get("/v1/agents", headers=VIEWER)
    assert response.status_code == 200
    agents = {a["deployment"]: a for a in response.json()}
    assert set(agents) == {"shop/retriever", "shop/planner", "ops/helper", "ops/fresh"}

    retriever = agents["shop/retriever"]
    assert retriever["service_account"] == "retriever-sa"
    assert retriever["first_seen"] < retriever["last_seen"]
    assert retriever["apd"]["revision"] == 2 and retriever["apd"]["window_status"] == "complete"
    assert [retriever[k] for k in ("mode", "policy_revision", "open_attack_stories")] == ["audit", 1, 0]

    assert agents["shop/planner"]["apd"]["window_status"] == "learning"
    assert agents["shop/planner"]["mode"] == "observe"
    assert agents["ops/helper"]["open_attack_stories"] == 2
    fresh = agents["ops/fresh"]
    assert (fresh["apd"], fresh["mode"], fresh["service_account"]) == (None, "observe", None)


def test_agent_detail_with_artifacts(client: TestClient) -> None:
    response = client.get("/v1/agents/shop/retriever", headers=APPROVER)
    assert response.status_code == 200
    agent = response.json()
    artifacts = agent["artifacts"]
    assert artifacts["apd"]["revision"] == 2
    assert artifacts["aibom"]["cyclonedx"] == CYCLONEDX
    assert artifacts["policy"]["network_policy"]["kind"] == "NetworkPolicy"
    assert artifacts["reconciliation"]["unused"] == ["get pods", "list secrets"]
    assert artifacts["bom_delta"]["undeclared"] == ["mcp:weather"]
    assert agent["revisions"] == {"apd": [1, 2], "aibom": [1], "policy": [1], "reconciliation": [1], "bom_delta": [1]}
    assert agent["open_story_ids"] == []

    fresh = client.get("/v1/agents/ops/fresh", headers=VIEWER).json()
    assert set(fresh["artifacts"].values()) == {None}
    assert fresh["revisions"]["apd"] == []

    helper = client.get("/v1/agents/ops/helper", headers=VIEWER).json()
    assert sorted(helper["open_story_ids"]) == ["st-held", "st-live"]


def test_artifact_endpoints(client: TestClient) -> None:
    apd = client.get("/v1/agents/shop/retriever/apd", headers=VIEWER)
    assert apd.status_code == 200 and apd.json()["revision"] == 2
    assert apd.json()["behaviours"]["egress"] == ["egress:api.openai.com:443/tcp"]

    policies = client.get("/v1/agents/shop/retriever/policies", headers=VIEWER).json()
    assert policies["network_policy"]["apiVersion"] == "networking.k8s.io/v1"
    assert policies["seccomp_profile"]["syscalls"][0]["names"] == ["read", "write", "openat"]
    assert policies["mode"] == "audit"

    delta = client.get("/v1/agents/shop/retriever/bom-delta", headers=VIEWER)
    assert delta.status_code == 200 and delta.json()["undeclared"] == ["mcp:weather"]


def test_aibom_is_a_cyclonedx_download(client: TestClient) -> None:
    response = client.get("/v1/agents/shop/retriever/aibom", headers=VIEWER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.cyclonedx+json; version=1.6"
    disposition = response.headers["content-disposition"]
    assert disposition == 'attachment; filename="shop_retriever.aibom.r1.cdx.json"'
    assert json.loads(response.content) == CYCLONEDX


def test_reconciliation_formats(client: TestClient) -> None:
    base = "/v1/agents/shop/retriever/reconciliation"
    assert client.get(base, headers=VIEWER).json() == RECONCILIATION

    markdown = client.get(f"{base}?format=markdown", headers=VIEWER)
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text == RECONCILIATION["rendered"]["markdown"]

    html = client.get(f"{base}?format=html", headers=VIEWER)
    assert html.headers["content-type"].startswith("text/html")
    assert html.text == RECONCILIATION["rendered"]["html"]
    assert "default-src 'none'" in html.headers["content-security-policy"]

    assert client.get(f"{base}?format=pdf", headers=VIEWER).status_code == 422


def test_attack_stories(client: TestClient) -> None:
    everything = client.get("/v1/attack-stories", headers=VIEWER).json()
    assert [s["story_id"] for s in everything] == ["st-live", "st-drift", "st-old", "st-held"]
    helper = client.get("/v1/attack-stories?deployment=ops/helper", headers=VIEWER).json()
    assert {s["story_id"] for s in helper} == {"st-live", "st-held"}
    assert len(client.get("/v1/attack-stories?limit=1", headers=VIEWER).json()) == 1

    one = client.get("/v1/attack-stories/st-live", headers=VIEWER)
    assert one.status_code == 200
    body = one.json()
    assert body["status"] == StoryStatus.POTENTIAL_COMPROMISE
    assert body["ocsf"]["class_uid"] == 2004
    assert body["techniques"][0]["uid"] == "AML.T0051"


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/v1/agents/shop/nobody", "agent shop/nobody not found"),
        ("/v1/agents/shop/nobody/apd", "agent shop/nobody not found"),
        ("/v1/agents/ops/fresh/apd", "no APD stored for agent ops/fresh"),
        ("/v1/agents/ops/fresh/aibom", "no AI-BOM stored for agent ops/fresh"),
        ("/v1/agents/ops/fresh/policies", "no policy bundle stored for agent ops/fresh"),
        ("/v1/agents/ops/fresh/reconciliation", "no reconciliation report stored for agent ops/fresh"),
        ("/v1/agents/ops/fresh/bom-delta", "no AI-BOM delta stored for agent ops/fresh"),
        ("/v1/attack-stories/st-missing", "attack story st-missing not found"),
    ],
)
def test_not_found_names_what_is_missing(client: TestClient, path: str, named: str) -> None:
    response = client.get(path, headers=VIEWER)
    assert response.status_code == 404
    assert named in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/agents/Shop/retriever",  # upper case
        "/v1/agents/shop/retriever_1",  # underscore
        "/v1/agents/-shop/retriever",  # leading dash
        f"/v1/agents/{'a' * 64}/retriever",  # namespace label too long
        "/v1/agents/shop/retriever./apd",  # trailing dot
        "/v1/attack-stories?deployment=shop",
        "/v1/attack-stories?limit=0",
        "/v1/attack-stories/bad%20id",
    ],
)
def test_bad_input_is_422_without_echo(client: TestClient, path: str) -> None:
    response = client.get(path, headers=VIEWER)
    assert response.status_code == 422
    for error in response.json()["detail"]:
        assert set(error) == {"loc", "msg", "type"}
