"""Used side for Kubernetes: which audit events count, for whom, and how."""

from __future__ import annotations

from datetime import UTC, datetime

from jobs.reconciliation import K8sRequest
from jobs.reconciliation.audit import extract_requests
from runward.core.contracts import K8sAuditEvent
from tests.posture.factories import SA1, audit_event

GET_CM = K8sRequest(verb="get", resource="configmaps", namespace="ns1", name="prompts")


def test_only_response_complete_deduplicated_by_audit_id() -> None:
    events = [
        audit_event("get", "configmaps", namespace="ns1", name="prompts", audit_id="a1", stage="RequestReceived"),
        audit_event("get", "configmaps", namespace="ns1", name="prompts", audit_id="a1"),
        audit_event("get", "configmaps", namespace="ns1", name="prompts", audit_id="a1"),  # second backend copy
        audit_event("get", "configmaps", namespace="ns1", name="prompts", audit_id="a2"),
        audit_event("get", "configmaps", namespace="ns1", name="prompts", audit_id="a3", stage="Panic"),
        {
            **audit_event("get", "configmaps", namespace="ns1", audit_id="a4"),
            "apiVersion": "audit.k8s.io/v1alpha1",
        },
    ]
    out = extract_requests(events, SA1)
    assert {r: f.audit_ids for r, f in out.used.items()} == {GET_CM: ["a1", "a2"]}
    assert out.considered == 2


def test_status_codes_decide_used_denied_or_no_evidence() -> None:
    events = [
        audit_event("get", "configmaps", namespace="ns1", name="prompts", code=404),  # authorised, then not found
        audit_event("delete", "secrets", namespace="ns1", name="db", code=403),
        audit_event("list", "pods", namespace="ns1", code=401),  # never reached the authorizer
        audit_event("list", "pods", namespace="ns1", code=429),  # rejected by priority-and-fairness first
    ]
    out = extract_requests(events, SA1)
    assert list(out.used) == [GET_CM]
    assert list(out.denied) == [K8sRequest(verb="delete", resource="secrets", namespace="ns1", name="db")]
    assert (out.considered, out.skipped) == (4, 2)


def test_impersonated_requests_belong_to_the_impersonated_identity() -> None:
    as_sa1 = {"username": SA1, "groups": ["system:serviceaccounts", "system:serviceaccounts:ns1"]}
    events = [
        audit_event("list", "pods", username="system:admin", namespace="ns1", impersonated=as_sa1),
        audit_event("list", "nodes", username=SA1, impersonated={"username": "bob"}),  # sa1 acting as bob
    ]
    out = extract_requests(events, SA1)
    assert set(out.used) == {
        K8sRequest(verb="list", resource="pods", namespace="ns1"),
        # sa1 itself exercised `impersonate users/bob`; the nodes list was bob's
        K8sRequest(verb="impersonate", resource="users", name="bob"),
    }
    assert K8sRequest(verb="list", resource="nodes") in extract_requests(events, "bob").used


def test_impersonating_a_service_account_with_extra_group() -> None:
    target = {
        "username": "system:serviceaccount:ns2:builder",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:ns2", "system:authenticated", "ops"],
    }
    out = extract_requests([audit_event("get", "pods", username=SA1, namespace="ns2", impersonated=target)], SA1)
    assert set(out.used) == {
        K8sRequest(verb="impersonate", resource="serviceaccounts", namespace="ns2", name="builder"),
        K8sRequest(verb="impersonate", resource="groups", name="ops"),
    }


def test_accepts_the_k8s_audit_event_contract_and_a_window() -> None:
    early = audit_event("get", "configmaps", namespace="ns1", name="prompts", ts="2024-05-01T09:00:00Z")
    late = audit_event("list", "pods", namespace="ns1", ts="2024-05-02T09:00:00Z")
    wrapped = [K8sAuditEvent(event=early), K8sAuditEvent(event=late)]
    assert extract_requests(wrapped, SA1).window_end == datetime(2024, 5, 2, 9, tzinfo=UTC)
    start = datetime(2024, 5, 1, 12, tzinfo=UTC)
    out = extract_requests(wrapped, SA1, window_start=start)
    assert list(out.used) == [K8sRequest(verb="list", resource="pods", namespace="ns1")]
    assert out.window_start == start
