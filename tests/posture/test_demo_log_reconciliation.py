"""The hand-derived declared-vs-observed split for ServiceAccount ns1/sa1 on the real
audit2rbac demo log, against the over-broad grant in rbac_sa1_overbroad.yaml.

Derivation, by reading tests/data/posture/audit2rbac_demo.log line by line
--------------------------------------------------------------------------
All 37 events are `audit.k8s.io/v1`, stage ResponseComplete, unique auditIDs. Every one
has `user.username = system:admin` and the real caller in `impersonatedUser` (the demo was
recorded with `kubectl --as`), so attribution must use impersonatedUser, as audit2rbac does.
29 are bob's, 3 alice's, and these 5 are `system:serviceaccount:ns1:sa1`'s:

  #  timestamp             auditID                               verb  objectRef                 code
  1  2017-09-11T20:00:59Z  60006562-ced6-4178-ac95-e1a50225b012  list  pods, namespace default   403
  2  2017-09-11T20:01:26Z  d7cd2b04-940b-42cb-ad2a-b4b8f937aa0e  list  pods, namespace default   403
  3  2017-09-11T20:01:30Z  25de0e17-3586-40d9-bbba-e7c3334b9cdf  list  nodes (cluster-scoped)    403
  4  2017-09-11T20:01:37Z  524c5a19-63b0-4af8-acc7-bf75fdad18dc  list  pods, all namespaces      403
  5  2017-09-11T20:01:50Z  07d17160-3e30-46a4-be6a-36e9d77acdac  list  pods, all namespaces      200

(requestURIs: /api/v1/namespaces/default/pods, /api/v1/nodes, /api/v1/pods; no objectRef
 carries apiGroup, so all are core-group requests; none carries a name.)

Used (authorised) requests: only #5, `list core pods` at cluster scope.
Denied attempts: #1+#2 (list pods in default, 2 events), #3 (list nodes), #4 (list pods
cluster-scope) -> 4 events, 3 distinct requests.

Granted atoms for ns1/sa1 in the manifest (39), and which contain request #5:
  agent-pod-reader (ClusterRoleBinding, SA ns1/sa1), cluster-wide:
      list pods      -> USED (verb, group, resource match; cluster-wide covers cluster scope)
      get pods, watch pods, get pods/log            -> unused (verb / resource differ)
  ns1-pod-operator (ClusterRoleBinding, Group system:serviceaccounts:ns1), cluster-wide:
      * pods         -> USED (wildcard verb)
  agent-dev (Role ns1, RoleBinding ns1, SA subject without namespace), 24 in ns1: unused,
      a RoleBinding grant never covers a cluster-scoped request
  agent-config (Role ns1), configmaps name=agent-prompts get/update: unused
  batch-admin (ClusterRole via RoleBinding ns1), batch * *: unused
  secret-reader (ClusterRole via RoleBinding ns2 naming ns1/sa1), secrets get/list in ns2: unused
  crd-viewer (Group system:authenticated), crds get/list cluster-wide: unused
  events-viewer (Group system:serviceaccounts), events list/watch cluster-wide: unused
  metrics-reader (ClusterRoleBinding), get /metrics: unused
  agent-aggregate (aggregationRule, no rules) and agent-legacy (missing Role): 0
Distractors (alice's cluster-admin, sa2, ns2/sa1, group system:serviceaccounts:ns2): 0.

=> granted 39, used 2, unused 37.
Denied attempts "granted now?": list pods (default) yes and list pods (cluster) yes — both
inside `list pods` cluster-wide; list nodes no — nothing grants nodes.
Proposed (audit2rbac expansion of #5's `list`: get, list, watch; cluster-scoped request ->
ClusterRole): one rule {apiGroups [""], resources [pods], verbs [get, list, watch]}.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobs.reconciliation import (
    Identity,
    K8sPermission,
    K8sRequest,
    ProposalOptions,
    RbacInventory,
    ReconciliationReport,
    build_report,
    reconcile_kubernetes,
)


def perm(verb: str, group: str, resource: str, ns: str | None = None, name: str | None = None) -> K8sPermission:
    return K8sPermission(verb=verb, api_group=group, resource=resource, namespace=ns, resource_name=name)


EXPECTED_USED = {perm("list", "", "pods"), perm("*", "", "pods")}

EXPECTED_UNUSED = {
    # cluster-wide (8)
    perm("get", "", "pods"),
    perm("watch", "", "pods"),
    perm("get", "", "pods/log"),
    perm("get", "apiextensions.k8s.io", "customresourcedefinitions"),
    perm("list", "apiextensions.k8s.io", "customresourcedefinitions"),
    perm("list", "", "events"),
    perm("watch", "", "events"),
    K8sPermission(verb="get", non_resource_url="/metrics"),
    # ns1 (27)
    *(perm(v, "", "configmaps", "ns1") for v in ("get", "list", "watch", "create", "update", "patch", "delete")),
    *(perm(v, "", "secrets", "ns1") for v in ("get", "list", "watch", "create", "update", "patch", "delete")),
    *(perm(v, "apps", "deployments", "ns1") for v in ("get", "list", "watch", "update", "patch")),
    *(perm(v, "batch", "jobs", "ns1") for v in ("create", "delete", "get", "list")),
    perm("create", "", "pods/exec", "ns1"),
    perm("get", "", "configmaps", "ns1", "agent-prompts"),
    perm("update", "", "configmaps", "ns1", "agent-prompts"),
    perm("*", "batch", "*", "ns1"),
    # ns2 (2)
    perm("get", "", "secrets", "ns2"),
    perm("list", "", "secrets", "ns2"),
}

LIST_PODS_CLUSTER = K8sRequest(verb="list", resource="pods")
SA1_LABELS = {
    "app.kubernetes.io/managed-by": "runward",
    "runward.dev/subject": "system-serviceaccount-ns1-sa1",
}


def test_headline_counts(full_report: ReconciliationReport) -> None:
    k8s = full_report.kubernetes
    assert (k8s.granted_count, k8s.used_count, k8s.unused_count) == (39, 2, 37)
    assert len(EXPECTED_UNUSED) == 37  # guards the hand-written list itself


def test_exact_used_unused_split(full_report: ReconciliationReport) -> None:
    k8s = full_report.kubernetes
    assert {u.permission for u in k8s.permissions if u.used} == EXPECTED_USED
    assert {u.permission for u in k8s.permissions if not u.used} == EXPECTED_UNUSED


def test_used_grants_name_the_call_and_the_binding_chain(full_report: ReconciliationReport) -> None:
    usage = {u.permission: u for u in full_report.kubernetes.permissions}
    wildcard = usage[perm("*", "", "pods")]
    assert wildcard.wildcard and wildcard.used_by == [LIST_PODS_CLUSTER] and wildcard.call_count == 1
    assert [(s.binding_name, s.subject) for s in wildcard.sources] == [
        ("ns1-pod-operator", "Group:system:serviceaccounts:ns1")
    ]
    explicit = usage[perm("list", "", "pods")]
    assert not explicit.wildcard and explicit.used_by == [LIST_PODS_CLUSTER]
    assert [(s.binding_kind, s.role_name, s.subject) for s in explicit.sources] == [
        ("ClusterRoleBinding", "agent-pod-reader", "ServiceAccount:ns1/sa1")
    ]
    batch = usage[perm("*", "batch", "*", "ns1")]
    assert batch.wildcard and not batch.used and batch.used_by == []


def test_observed_requests_and_denied_attempts(full_report: ReconciliationReport) -> None:
    k8s = full_report.kubernetes
    assert k8s.events_considered == 5
    assert [(o.request, o.count, o.status_codes, o.audit_ids) for o in k8s.observed] == [
        (LIST_PODS_CLUSTER, 1, [200], ["07d17160-3e30-46a4-be6a-36e9d77acdac"])
    ]
    denied = {
        (d.request, d.count, tuple(d.status_codes), tuple(d.audit_ids), d.covered_by_current_grant)
        for d in k8s.denied_attempts
    }
    assert denied == {
        (
            K8sRequest(verb="list", resource="pods", namespace="default"),
            2,
            (403,),
            ("60006562-ced6-4178-ac95-e1a50225b012", "d7cd2b04-940b-42cb-ad2a-b4b8f937aa0e"),
            True,
        ),
        (
            K8sRequest(verb="list", resource="nodes"),
            1,
            (403,),
            ("25de0e17-3586-40d9-bbba-e7c3334b9cdf",),
            False,
        ),
        (LIST_PODS_CLUSTER, 1, (403,), ("524c5a19-63b0-4af8-acc7-bf75fdad18dc",), True),
    }
    assert k8s.outside_grants == []


def test_window_and_notes(full_report: ReconciliationReport) -> None:
    assert full_report.window_start == datetime(2017, 9, 11, 19, 55, 5, tzinfo=UTC)
    assert full_report.window_end == datetime(2017, 9, 11, 20, 29, 4, tzinfo=UTC)
    assert any("agent-aggregate uses aggregationRule" in n for n in full_report.notes)
    assert any("missing Role agent-legacy" in n for n in full_report.notes)


def test_proposed_least_privilege_cluster_role(full_report: ReconciliationReport) -> None:
    assert full_report.kubernetes.proposed_rbac == [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"labels": SA1_LABELS, "name": "runward:least-privilege:sa1"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"labels": SA1_LABELS, "name": "runward:least-privilege:sa1"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "runward:least-privilege:sa1",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "sa1", "namespace": "ns1"}],
        },
    ]


def _rules(objects: list[dict[str, Any]], kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    return [o["rules"] for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace][0]


def test_include_denied_reproduces_audit2rbac_for_sa1(
    demo_events: list[dict[str, Any]], overbroad_rbac: RbacInventory
) -> None:
    # audit2rbac --serviceaccount ns1:sa1 covers every request, 403s included: the two
    # cluster-scoped lists become one ClusterRole rule and cover list pods in default.
    report = build_report(
        "system:serviceaccount:ns1:sa1",
        overbroad_rbac,
        demo_events,
        options=ProposalOptions(include_denied=True),
    )
    proposal = report.kubernetes.proposed_rbac
    assert [o["kind"] for o in proposal] == ["ClusterRole", "ClusterRoleBinding"]
    assert _rules(proposal, "ClusterRole") == [
        {"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]}
    ]


def test_alice_matches_audit2rbac_readme(demo_events: list[dict[str, Any]]) -> None:
    # The README of liggitt/audit2rbac shows this exact Role for `--user alice` on demo.log.
    options = ProposalOptions(include_denied=True, name="audit2rbac:alice")
    k8s, *_ = reconcile_kubernetes(
        RbacInventory(), demo_events, Identity("alice", ("system:authenticated",)), options=options
    )
    assert k8s.observed == [] and sum(d.count for d in k8s.denied_attempts) == 3
    role, binding = k8s.proposed_rbac
    assert (role["kind"], role["metadata"]["name"], role["metadata"]["namespace"]) == (
        "Role",
        "audit2rbac:alice",
        "ns1",
    )
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps", "pods", "secrets"], "verbs": ["get", "list", "watch"]}
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "audit2rbac:alice",
    }
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]


def test_bob_namespaces_and_discovery(demo_events: list[dict[str, Any]]) -> None:
    bob = Identity("bob", ("system:authenticated",))
    # Only what succeeded: list pods in default (twice); the 23 discovery GETs (/api, /api/v1, /apis,
    # 20 x /apis/<group>/<version>)
    # are covered by system:discovery and never enter a proposal.
    k8s, *_ = reconcile_kubernetes(RbacInventory(), demo_events, bob)
    assert k8s.events_considered == 29
    assert [o.count for o in k8s.observed if o.request.non_resource_path is None] == [2]
    assert sum(1 for o in k8s.observed if o.request.non_resource_path is not None) == 23
    assert [(o["kind"], o["metadata"].get("namespace")) for o in k8s.proposed_rbac] == [
        ("Role", "default"),
        ("RoleBinding", "default"),
    ]
    # With 403s and audit2rbac's default namespace expansion: pods seen in default and ns1
    # become cluster-wide, next to nodes.
    wide = ProposalOptions(include_denied=True, expand_multiple_namespaces_to_cluster=True)
    k8s, *_ = reconcile_kubernetes(RbacInventory(), demo_events, bob, options=wide)
    assert [o["kind"] for o in k8s.proposed_rbac] == ["ClusterRole", "ClusterRoleBinding"]
    assert _rules(k8s.proposed_rbac, "ClusterRole") == [
        {"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]}
    ]
    # Runward's default keeps one Role per namespace instead.
    k8s, *_ = reconcile_kubernetes(RbacInventory(), demo_events, bob, options=ProposalOptions(include_denied=True))
    assert _rules(k8s.proposed_rbac, "ClusterRole") == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}
    ]
    pods = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    assert _rules(k8s.proposed_rbac, "Role", "default") == pods
    assert _rules(k8s.proposed_rbac, "Role", "ns1") == pods
