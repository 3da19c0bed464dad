"""`runward reconcile` end to end: real audit log and RBAC manifests in, report stored for the
API (both store backends) and published on runward.reconciliation (real broker)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from jobs.reconciliation.job import ReconcileInputs, reconcile
from runward.control.api.app import create_app
from runward.core.config import Settings
from runward.core.contracts import utcnow
from runward.core.store import Store, upgrade
from runward.core.topics import RECONCILIATION
from tests.kafka_reading import read_messages

DATA = Path(__file__).resolve().parents[1] / "data" / "posture"
TOKEN = "viewer-token-reconcile-0123456789"


def test_reconcile_stores_publishes_and_serves(db_url: str, kafka_bootstrap: str) -> None:
    upgrade(db_url)
    Store(db_url).touch_agent("ns1/agent", "sa1", utcnow())
    config = Settings(kafka=kafka_bootstrap, db=db_url, api_tokens=f"ops:{TOKEN}:viewer")
    report = reconcile(
        ReconcileInputs(
            deployment="ns1/agent", rbac=[DATA / "rbac_sa1_overbroad.yaml"], audit=[DATA / "audit2rbac_demo.log"]
        ),
        config,
    ).report
    # Split derived by hand from the log (see test_demo_log_reconciliation): 39 granted, 2 used.
    assert (report.kubernetes.granted_count, report.kubernetes.used_count) == (39, 2)

    published = [
        json.loads(m.value)
        for m in read_messages(kafka_bootstrap, RECONCILIATION.name, 1, lambda m: m.key == "ns1/agent")
    ]
    assert published and published[-1]["kubernetes"]["unused_count"] == 37

    client = TestClient(create_app(config))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = client.get("/v1/agents/ns1/agent/reconciliation", headers=auth).json()
    assert body["kubernetes"]["granted_count"] == 39
    markdown = client.get("/v1/agents/ns1/agent/reconciliation?format=markdown", headers=auth)
    assert markdown.status_code == 200 and "granted 39, used 2" in markdown.text
    html = client.get("/v1/agents/ns1/agent/reconciliation?format=html", headers=auth)
    assert html.headers["content-type"].startswith("text/html") and "UNUSED" in html.text.upper()


def test_audit_webhook_feeds_the_report_through_kafka(db_url: str, kafka_bootstrap: str) -> None:
    """The API server's audit webhook posts EventLists; the report reads them back from raw.k8s."""
    from edges.intake.config import SourceConfig
    from edges.intake.otlp_receiver import create_app as receiver_app
    from edges.intake.publish import RawPublisher
    from jobs.reconciliation import load_audit_events

    upgrade(db_url)
    events = load_audit_events(DATA / "audit2rbac_demo.log")
    publisher = RawPublisher(kafka_bootstrap, "test-audit-webhook")
    from runward.core.auth import TokenRegistry, parse_token_list

    tokens = TokenRegistry(parse_token_list("apiserver:audit-sender-token-0123:sender"))
    with TestClient(
        receiver_app(SourceConfig(), publisher, close_publisher=True, tokens=tokens),
        headers={"Authorization": "Bearer audit-sender-token-0123"},
    ) as client:
        answer = client.post(
            "/v1/k8s-audit", json={"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": events}
        )
        assert answer.status_code == 200 and answer.json()["accepted"] == len(events) == 37
        bad = client.post("/v1/k8s-audit", json={"kind": "Pod"})
        assert bad.json()["rejected"][0]["reason"].startswith("not an audit.k8s.io/v1 Event")

    config = Settings(kafka=kafka_bootstrap, db=db_url)
    report = reconcile(
        ReconcileInputs(deployment="ns1/agent", service_account="sa1", rbac=[DATA / "rbac_sa1_overbroad.yaml"]),
        config,
        publish=False,
    ).report
    # The broker is shared by the session, so other tests' audit events may be there too; sa1's
    # calls come only from this log, so the split is the hand-derived one.
    assert (report.kubernetes.granted_count, report.kubernetes.used_count) == (39, 2)
    assert len(report.kubernetes.denied_attempts) >= 3
