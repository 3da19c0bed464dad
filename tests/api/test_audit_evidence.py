"""Audit evidence over the real API app on both stores: the per-agent route (auth, newest first,
counts per source) and the audit soak, which is not clean once the agent caused a would-be
violation after it entered audit."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from runward.control.cli import main
from runward.core.contracts import AuditEvidence, EvidenceSource
from runward.core.store import Store

from .support import BUNDLE_AT, NOW, VIEWER, VIEWER_TOKEN, WRONG_TOKEN
from .test_golive import RETRIEVER, soaked, statuses
from .test_stories_cli import api_url

__all__ = ["api_url", "soaked"]  # fixtures, used by name


def evidence(n: int, source: EvidenceSource, ts: datetime, action: str) -> AuditEvidence:
    return AuditEvidence(
        evidence_id=f"test-{source.value}-{n}",
        deployment="shop/retriever",
        ts=ts,
        source=source,
        action=action,
        reason="would be refused",
        pod="retriever-7d9f-abcde",
        bundle_revision=1,
    )


BEFORE_AUDIT = evidence(0, EvidenceSource.SECCOMP, BUNDLE_AT - timedelta(hours=1), "ptrace")
DURING = [
    evidence(1, EvidenceSource.GATEWAY, NOW - timedelta(minutes=30), "time/convert_time"),
    evidence(2, EvidenceSource.SECCOMP, NOW - timedelta(minutes=20), "mount"),
    evidence(3, EvidenceSource.GATEWAY, NOW - timedelta(minutes=10), "docs/delete"),
]


def test_route_needs_a_token_and_lists_newest_first_with_counts(client: TestClient, store: Store) -> None:
    path = f"{RETRIEVER}/audit-evidence"
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {WRONG_TOKEN}"}).status_code == 401
    empty = client.get(path, headers=VIEWER)
    assert empty.status_code == 200 and empty.json()["total"] == 0 and empty.json()["evidence"] == []
    store.put_audit_evidence([BEFORE_AUDIT, *DURING])
    store.put_audit_evidence(DURING[:1])  # redelivered: stored once
    body = client.get(path, headers=VIEWER).json()
    assert body["total"] == 4 and body["counts"] == {"gateway": 2, "seccomp": 2}
    assert [e["action"] for e in body["evidence"]] == ["docs/delete", "mount", "time/convert_time", "ptrace"]
    recent = client.get(path, headers=VIEWER, params={"since": BUNDLE_AT.isoformat(), "limit": 1}).json()
    assert recent["total"] == 3 and [e["action"] for e in recent["evidence"]] == ["docs/delete"]
    assert client.get("/v1/agents/shop/nobody/audit-evidence", headers=VIEWER).status_code == 404


def test_evidence_during_the_soak_spoils_it(soaked: TestClient, store: Store) -> None:
    store.put_audit_evidence([BEFORE_AUDIT])  # before the agent entered audit: not the soak's
    assert statuses(soaked)["audit_soak"] == "pass"
    store.put_audit_evidence(DURING)
    response = soaked.get(f"{RETRIEVER}/readiness", headers=VIEWER, params={"target": "enforce"})
    check = next(c for c in response.json()["checks"] if c["id"] == "audit_soak")
    assert check["status"] == "fail"
    assert "3 would-be violation(s) during the soak (gateway 2, seccomp 1)" in check["evidence"]
    assert "time/convert_time" in check["evidence"] and "ptrace" not in check["evidence"]
    assert "/v1/agents/shop/retriever/audit-evidence" in check["fix"]


def test_evidence_cli_lists_through_the_api(api_url: str, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    store.put_audit_evidence(DURING)
    args = ["evidence", "shop/retriever", "--api", api_url, "--token", VIEWER_TOKEN]
    assert main(args) == 0
    shown = capsys.readouterr().out
    assert "3 (gateway 2, seccomp 1)" in shown
    assert "docs/delete" in shown and "mount" in shown
    assert main([*args, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["evidence"]
    assert [e["action"] for e in listed] == ["docs/delete", "mount", "time/convert_time"]
    assert main(["evidence", "shop/retriever", "--api", api_url]) == 2  # no token
