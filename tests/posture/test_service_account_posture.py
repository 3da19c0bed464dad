"""One ServiceAccount per agent: shared and `default` ServiceAccounts are flagged."""

from __future__ import annotations

import pytest

from jobs.reconciliation import (
    ServiceAccountRef,
    assess_service_accounts,
    load_deployments,
    service_account_of,
)
from tests.posture.factories import DATA


def test_fixture_deployments() -> None:
    deployments = load_deployments(DATA / "agent_deployments.yaml")
    assert len(deployments) == 6  # DeploymentList items carry no kind, as the API returns them
    result = {
        p.deployment: (str(p.service_account), [f.code for f in p.findings])
        for p in assess_service_accounts(deployments)
    }
    assert result == {
        "ns1/research-agent": ("ns1/sa1", ["shared_service_account"]),
        "ns1/summarizer-agent": ("ns1/sa1", ["shared_service_account"]),
        "ns1/triage-agent": ("ns1/default", ["default_service_account"]),  # serviceAccountName absent
        "ns2/planner-agent": ("ns2/planner", []),  # deprecated `serviceAccount` field still honoured
        "ns2/coder-agent": ("ns2/default", ["default_service_account"]),
        "ns3/browser-agent": ("ns3/browser", []),
    }
    research = next(p for p in assess_service_accounts(deployments) if p.deployment == "ns1/research-agent")
    assert research.findings[0].related_deployments == ["ns1/summarizer-agent"]
    assert research.findings[0].severity == "high" and not research.compliant


def test_default_sa_shared_by_two_agents_gets_both_findings() -> None:
    deployments = [
        {"metadata": {"name": n, "namespace": "agents"}, "spec": {"template": {"spec": {}}}} for n in ("a", "b", "c")
    ]
    for posture in assess_service_accounts(deployments):
        assert [f.code for f in posture.findings] == ["shared_service_account", "default_service_account"]
        assert len(posture.findings[0].related_deployments) == 2


def test_same_sa_name_in_different_namespaces_is_not_shared() -> None:
    deployments = [
        {
            "metadata": {"name": "a", "namespace": ns},
            "spec": {"template": {"spec": {"serviceAccountName": "agent"}}},
        }
        for ns in ("ns1", "ns2")
    ]
    assert all(p.compliant for p in assess_service_accounts(deployments))


def test_service_account_ref_parsing() -> None:
    expected = ServiceAccountRef(namespace="ns1", name="sa1")
    for text in ("ns1:sa1", "ns1/sa1", "system:serviceaccount:ns1:sa1"):
        assert ServiceAccountRef.parse(text) == expected
    assert expected.username == "system:serviceaccount:ns1:sa1"
    for bad in ("sa1", "ns1:", "/sa1", "a:b:c"):
        with pytest.raises(ValueError):
            ServiceAccountRef.parse(bad)
    assert service_account_of({"metadata": {"namespace": "x"}, "spec": {}}) == ServiceAccountRef(
        namespace="x", name="default"
    )
