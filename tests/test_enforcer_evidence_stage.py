"""The enforcer stage (a real Faust worker on a real broker) with the Enforce pillar's inputs:
an APD revision with tools and learnt argument rules becomes a bundle whose tool policy the gateway
applies, and AuditEvidence on runward.audit-evidence is stored per agent and served by the API
(viewer role), newest first with counts per source."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runward.control.api.app import create_app
from runward.control.api.publisher import KafkaPublisher
from runward.core.config import Settings
from runward.core.contracts import ApdRevision, ArgumentRule, AuditEvidence, EvidenceSource, WindowStatus, utcnow
from runward.core.store import Store
from runward.core.topics import APD, AUDIT_EVIDENCE
from tests.bom.stage_util import own_broker, publish, running_stages
from tests.test_enforcer_gate_stage import wait_for

D = "agents/evidenced"
VIEWER = "view-6f1a0c9d2b7e4a18"
NOW = utcnow()


@pytest.fixture(scope="module")
def enforcer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store]]:
    home = tmp_path_factory.mktemp("enforcer-evidence")
    with own_broker(home) as bootstrap, running_stages(["enforcer"], bootstrap, home) as db_url:
        yield bootstrap, Store(db_url)


def test_apd_tools_become_the_bundle_tool_policy(enforcer: tuple[str, Store]) -> None:
    bootstrap, store = enforcer
    apd = ApdRevision(
        deployment=D,
        revision=1,
        created_at=NOW,
        autonomy="low",
        window_started_at=NOW - timedelta(days=3),
        window_ends_at=NOW - timedelta(minutes=1),
        window_status=WindowStatus.COMPLETE,
        behaviours={"mcp_tools": ["tool:time/get_current_time"], "syscalls": ["syscall:read"]},
        tool_arguments={"time/get_current_time": {"timezone": ArgumentRule(types=["string"], values=["UTC"])}},
    )
    publish(bootstrap, APD, [(D, apd)])
    bundle: dict[str, Any] = wait_for("a policy bundle", lambda: store.latest_artifact(D, "policy"))
    assert bundle["tool_policy"] == {
        "tools": [
            {
                "tool": "time/get_current_time",
                "arguments": {
                    "timezone": {
                        "types": ["string"],
                        "min_value": None,
                        "max_value": None,
                        "max_length": None,
                        "values": ["UTC"],
                        "path_prefixes": [],
                        "domains": [],
                    }
                },
            }
        ]
    }


def test_evidence_is_stored_and_served_per_agent(enforcer: tuple[str, Store]) -> None:
    bootstrap, store = enforcer
    items = [
        AuditEvidence(
            evidence_id=f"stage-test-{n}",
            deployment=D,
            ts=NOW + timedelta(seconds=n),
            source=source,
            action=action,
            reason="would be refused",
        )
        for n, (source, action) in enumerate(
            [(EvidenceSource.SECCOMP, "ptrace"), (EvidenceSource.GATEWAY, "time/convert_time")]
        )
    ]
    publish(bootstrap, AUDIT_EVIDENCE, [(D, e) for e in [*items, items[0]]])  # one redelivered
    wait_for("stored evidence", lambda: store.audit_evidence(D)[1].get("gateway"))
    app = create_app(
        Settings(api_tokens=f"v:{VIEWER}:viewer", kafka=bootstrap),
        store=store,
        publisher=KafkaPublisher(bootstrap, timeout_s=5),
    )
    with TestClient(app) as client:
        path = f"/v1/agents/{D}/audit-evidence"
        assert client.get(path).status_code == 401
        response = client.get(path, headers={"Authorization": f"Bearer {VIEWER}"})
    assert response.status_code == 200
    body = response.json()
    assert body["counts"] == {"gateway": 1, "seccomp": 1} and body["total"] == 2
    assert [e["action"] for e in body["evidence"]] == ["time/convert_time", "ptrace"]
