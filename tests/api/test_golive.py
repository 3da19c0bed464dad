"""Go-live over the real API app on both stores: readiness, waivers and reviews signed by a
person, the promotion gate holding on readiness, rollback, and the hash-chained history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from runward.control.api.app import create_app
from runward.core.config import Settings
from runward.core.contracts import utcnow
from runward.core.store import Store
from runward.core.store.schema import HistoryRow

from .support import APPROVER_TOKEN, PROMOTION_KEY, VIEWER, VIEWER_TOKEN, SpyPublisher, make_client

ADA = "Ada Platform <ada@example.com>"
ADA_HEADERS = {"Authorization": f"Bearer {APPROVER_TOKEN}"}
RETRIEVER = "/v1/agents/shop/retriever"


def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    entries = [
        {"name": "alice", "token": VIEWER_TOKEN, "role": "viewer"},
        {
            "name": "ada",
            "token": APPROVER_TOKEN,
            "role": "approver",
            "person": "Ada Platform",
            "email": "ada@example.com",
        },
    ]
    path.write_text(json.dumps(entries))
    return path


def app_client(store: Store, publisher: SpyPublisher, tmp_path: Path, kafka: str, soak_s: int) -> TestClient:
    settings = Settings(
        api_tokens="", tokens_file=tokens_file(tmp_path), kafka=kafka, audit_soak_s=soak_s, promotion_key=PROMOTION_KEY
    )
    return make_client(create_app(settings, store=store, publisher=publisher))


@pytest.fixture
def golive(store: Store, publisher: SpyPublisher, tmp_path: Path, kafka_bootstrap: str) -> Iterator[TestClient]:
    """The API with a one-day audit soak (retriever has soaked two hours)."""
    with app_client(store, publisher, tmp_path, kafka_bootstrap, soak_s=86400) as client:
        yield client


@pytest.fixture
def soaked(store: Store, publisher: SpyPublisher, tmp_path: Path, kafka_bootstrap: str) -> Iterator[TestClient]:
    """The API with a one-hour soak: retriever's two hours in audit are enough."""
    with app_client(store, publisher, tmp_path, kafka_bootstrap, soak_s=3600) as client:
        yield client


def statuses(client: TestClient, path: str = RETRIEVER, target: str = "enforce") -> dict[str, str]:
    response = client.get(f"{path}/readiness", headers=VIEWER, params={"target": target})
    assert response.status_code == 200, response.text
    return {c["id"]: c["status"] for c in response.json()["checks"]}


def test_readiness_reports_each_check_from_the_stored_artifacts(golive: TestClient) -> None:
    response = golive.get(f"{RETRIEVER}/readiness", headers=VIEWER)
    assert response.status_code == 200
    report = response.json()
    assert (report["deployment"], report["target"], report["mode"], report["ready"]) == (
        "shop/retriever",
        "enforce",
        "audit",
        False,
    )
    checks = {c["id"]: c for c in report["checks"]}
    assert {k: c["status"] for k, c in checks.items()} == {
        "aibom_reviewed": "fail",  # the stored delta lists mcp:weather, unreviewed
        "apd_complete": "pass",
        "observation_window": "pass",
        "service_account": "pass",  # retriever-sa, used by no other agent
        "reconciliation_reviewed": "fail",  # 2 unused permissions
        "no_open_compromise": "pass",  # st-old predates the bundle, st-drift is drift
        "policies_proven": "fail",  # the seeded bundle carries no proof
        "audit_soak": "fail",  # two hours of a one-day soak
        "current_mode": "pass",
    }
    assert "undeclared:mcp:weather" in checks["aibom_reviewed"]["evidence"]
    assert "2 granted permission(s) were never used" in checks["reconciliation_reviewed"]["evidence"]
    assert checks["audit_soak"]["fix"].startswith("keep the agent in audit until")
    assert checks["policies_proven"]["waivable"] is False

    planner = golive.get("/v1/agents/shop/planner/readiness", headers=VIEWER, params={"target": "audit"}).json()
    assert planner["ready"] is False and planner["mode"] == "observe"
    assert golive.get("/v1/agents/shop/ghost/readiness", headers=VIEWER).status_code == 404
    assert golive.get(f"{RETRIEVER}/readiness").status_code == 401


def test_readiness_renders_markdown_and_html_for_the_ticket(golive: TestClient) -> None:
    markdown = golive.get(f"{RETRIEVER}/readiness", headers=VIEWER, params={"format": "markdown"})
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "# Go-live readiness: shop/retriever" in markdown.text and "| policies proven | fail |" in markdown.text
    html = golive.get(f"{RETRIEVER}/readiness", headers=VIEWER, params={"format": "html"})
    assert html.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert "<h1>Go-live readiness: shop/retriever</h1>" in html.text


def test_a_waiver_is_signed_by_a_person_and_shows_as_waived(golive: TestClient) -> None:
    until = (utcnow() + timedelta(days=14)).isoformat()
    body = {"check": "reconciliation_reviewed", "reason": "proposal applied in PR 481", "until": until}
    assert golive.post(f"{RETRIEVER}/waivers", headers=VIEWER, json=body).status_code == 403
    response = golive.post(f"{RETRIEVER}/waivers", headers=ADA_HEADERS, json=body)
    assert response.status_code == 201, response.text
    waiver = response.json()
    assert (waiver["kind"], waiver["actor"], waiver["check"]) == ("waiver", ADA, "reconciliation_reviewed")

    report = golive.get(f"{RETRIEVER}/readiness", headers=VIEWER).json()
    check = next(c for c in report["checks"] if c["id"] == "reconciliation_reviewed")
    assert check["status"] == "waived"
    assert check["waiver"]["actor"] == ADA and check["waiver"]["reason"] == "proposal applied in PR 481"
    assert "waived by Ada Platform" in check["evidence"]

    [listed] = golive.get(f"{RETRIEVER}/waivers", headers=VIEWER).json()
    assert listed["history_seq"] == waiver["history_seq"]
    [entry] = golive.get("/v1/history", headers=VIEWER).json()
    assert (entry["kind"], entry["actor"], entry["reason"]) == ("waiver", ADA, "proposal applied in PR 481")
    assert entry["body"]["until"] is not None


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"check": "policies_proven", "reason": "trust me", "until": "2099-01-01T00:00:00Z"}, 409, "cannot be waived"),
        ({"check": "audit_soak", "reason": "in a hurry", "until": "2099-01-01T00:00:00Z"}, 409, "cannot be waived"),
        ({"check": "service_account", "reason": "later"}, 422, "needs `until`"),
        ({"check": "service_account", "reason": "later", "until": "2001-01-01T00:00:00Z"}, 422, "in the past"),
        ({"check": "service_account", "until": "2099-01-01T00:00:00Z"}, 422, "reason"),
        ({"check": "no_such_check", "reason": "x", "until": "2099-01-01T00:00:00Z"}, 422, "check"),
        ({"check": "policies_proven", "reason": "x", "subject": "egress:evil:443/tcp"}, 422, "no items to review"),
    ],
)
def test_bad_waivers_are_refused(golive: TestClient, body: dict[str, str], status: int, fragment: str) -> None:
    response = golive.post(f"{RETRIEVER}/waivers", headers=ADA_HEADERS, json=body)
    assert response.status_code == status
    assert fragment in response.text
    assert golive.get("/v1/history", headers=VIEWER).json() == []


def test_a_shared_service_account_fails_until_waived(golive: TestClient, store: Store) -> None:
    store.touch_agent("shop/twin", "retriever-sa", utcnow())
    assert statuses(golive)["service_account"] == "fail"
    until = (utcnow() + timedelta(days=3)).isoformat()
    body = {"check": "service_account", "reason": "twin is retired on Friday", "until": until}
    assert golive.post(f"{RETRIEVER}/waivers", headers=ADA_HEADERS, json=body).status_code == 201
    assert statuses(golive)["service_account"] == "waived"


def test_promotion_to_enforce_holds_on_each_readiness_shortcut(
    soaked: TestClient, store: Store, publisher: SpyPublisher
) -> None:
    def refusal() -> list[str]:
        response = soaked.post(f"{RETRIEVER}/promotion", headers=ADA_HEADERS, json={"mode": "enforce", "reason": "go"})
        assert response.status_code == 409, response.text
        return [r.split(":")[0] for r in response.json()["reasons"]]

    unproven = "no passing proof for APD revision 2"
    assert refusal() == [
        unproven,
        "readiness check aibom_reviewed fails",
        "readiness check reconciliation_reviewed fails",
    ]
    # Review the one undeclared dependency, waive the reconciliation: only the proof is left.
    review = {"check": "aibom_reviewed", "subject": "undeclared:mcp:weather", "reason": "our own MCP server"}
    assert soaked.post(f"{RETRIEVER}/waivers", headers=ADA_HEADERS, json=review).status_code == 201
    until = (utcnow() + timedelta(days=7)).isoformat()
    waiver = {"check": "reconciliation_reviewed", "reason": "PR 481 merged", "until": until}
    assert soaked.post(f"{RETRIEVER}/waivers", headers=ADA_HEADERS, json=waiver).status_code == 201
    assert refusal() == [unproven]
    # A shared ServiceAccount without a waiver holds it too.
    store.touch_agent("shop/twin", "retriever-sa", utcnow())
    assert refusal() == [unproven, "readiness check service_account fails"]
    assert publisher.calls == []
    kinds = [e["kind"] for e in soaked.get("/v1/history", headers=VIEWER).json()]
    assert kinds == ["review", "waiver"]  # refused promotions are not decisions


def test_rollback_is_always_allowed_and_recorded(soaked: TestClient, publisher: SpyPublisher) -> None:
    response = soaked.post(
        f"{RETRIEVER}/promotion", headers=ADA_HEADERS, json={"mode": "observe", "reason": "errors in audit log"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["approver"] == ADA
    [entry] = soaked.get("/v1/history", headers=VIEWER, params={"deployment": "shop/retriever"}).json()
    assert (entry["kind"], entry["actor"], entry["reason"]) == ("promotion", ADA, "errors in audit log")
    assert entry["body"]["from"] == "audit" and entry["body"]["to"] == "observe" and entry["body"]["rollback"] is True
    assert entry["body"]["token"] == "ada"
    assert [(t, k) for t, k, _ in publisher.calls] == [("runward.promotions", "shop/retriever")]


def test_history_exports_and_detects_an_edited_row(soaked: TestClient, store: Store) -> None:
    until = (utcnow() + timedelta(days=7)).isoformat()
    for check in ("reconciliation_reviewed", "service_account"):
        body = {"check": check, "reason": f"accepted {check}", "until": until}
        assert soaked.post(f"{RETRIEVER}/waivers", headers=ADA_HEADERS, json=body).status_code == 201
    soaked.post(f"{RETRIEVER}/promotion", headers=ADA_HEADERS, json={"mode": "observe", "reason": "rollback"})

    export = soaked.get("/v1/history/export", headers=VIEWER)
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3] and lines[2]["prev_hash"] == lines[1]["hash"]
    verified = soaked.get("/v1/history/verify", headers=VIEWER).json()
    assert verified == {"ok": True, "entries": 3, "head": lines[2]["hash"], "broken_at": None, "problem": None}

    # Someone with database access rewrites who accepted the first risk.
    with store.session() as s:
        s.execute(sa.update(HistoryRow).where(HistoryRow.seq == 1).values(actor="Somebody Else"))
    broken = soaked.get("/v1/history/verify", headers=VIEWER).json()
    assert broken["ok"] is False and broken["broken_at"] == 1 and "edited" in broken["problem"]
