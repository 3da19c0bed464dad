"""RBAC granted-side semantics: subjects, binding scope, wildcards, names, non-resource URLs."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.reconciliation import (
    Identity,
    K8sPermission,
    K8sRequest,
    RbacInventory,
    ServiceAccountRef,
    granted_permissions,
    reconcile_kubernetes,
)
from jobs.reconciliation.matching import covers
from tests.posture.factories import (
    SA1,
    audit_event,
    binding,
    cluster_role,
    group_subject,
    role,
    rule,
    sa_subject,
    user_subject,
)

SA1_REF = ServiceAccountRef(namespace="ns1", name="sa1")
SA1_ID = Identity(SA1_REF.username, SA1_REF.groups)
READ_PODS = cluster_role("read-pods", rule(["get"], ["pods"]))


def granted(objects: list[dict[str, Any]], identity: Identity = SA1_ID) -> set[K8sPermission]:
    perms, _ = granted_permissions(RbacInventory.from_objects(objects), identity)
    return set(perms)


def get_pods(namespace: str | None) -> K8sPermission:
    return K8sPermission(verb="get", resource="pods", namespace=namespace)


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ("system:serviceaccounts", True),
        ("system:serviceaccounts:ns1", True),
        ("system:authenticated", True),
        ("system:serviceaccounts:ns2", False),
        ("system:unauthenticated", False),
        ("system:masters", False),
    ],
)
def test_group_subjects_reach_the_service_account(group: str, expected: bool) -> None:
    crb = binding("ClusterRoleBinding", "g", "ClusterRole", "read-pods", [group_subject(group)])
    assert (get_pods(None) in granted([READ_PODS, crb])) is expected


def test_service_account_subject_matching() -> None:
    rb_no_ns = binding("RoleBinding", "b1", "ClusterRole", "read-pods", [sa_subject(namespace=None)], "ns1")
    assert granted([READ_PODS, rb_no_ns]) == {get_pods("ns1")}  # defaults to the binding's namespace
    rb_other_ns = binding("RoleBinding", "b2", "ClusterRole", "read-pods", [sa_subject(namespace=None)], "ns2")
    assert granted([READ_PODS, rb_other_ns]) == set()  # that is ns2/sa1, another identity
    crb_no_ns = binding("ClusterRoleBinding", "b3", "ClusterRole", "read-pods", [sa_subject(namespace=None)])
    assert granted([READ_PODS, crb_no_ns]) == set()  # no namespace to default to
    crb_user = binding("ClusterRoleBinding", "b4", "ClusterRole", "read-pods", [user_subject(SA1)])
    assert granted([READ_PODS, crb_user]) == {get_pods(None)}  # a User subject naming the SA's username
    crb_sa2 = binding("ClusterRoleBinding", "b5", "ClusterRole", "read-pods", [sa_subject("sa2")])
    assert granted([READ_PODS, crb_sa2]) == set()


def test_rolebinding_to_clusterrole_grants_only_in_its_namespace() -> None:
    rb = binding("RoleBinding", "rb", "ClusterRole", "read-pods", [sa_subject()], "ns2")
    crb = binding("ClusterRoleBinding", "crb", "ClusterRole", "read-pods", [sa_subject()])
    (ns_grant,) = granted([READ_PODS, rb])
    (cluster_grant,) = granted([READ_PODS, crb])
    assert ns_grant == get_pods("ns2") and cluster_grant == get_pods(None)

    in_ns2 = K8sRequest(verb="get", resource="pods", namespace="ns2", name="p")
    in_ns1 = K8sRequest(verb="get", resource="pods", namespace="ns1", name="p")
    cluster_scoped = K8sRequest(verb="get", resource="pods")
    assert covers(ns_grant, in_ns2) and not covers(ns_grant, in_ns1) and not covers(ns_grant, cluster_scoped)
    assert covers(cluster_grant, in_ns2) and covers(cluster_grant, in_ns1) and covers(cluster_grant, cluster_scoped)


def test_rolebinding_to_clusterrole_cannot_grant_cluster_scoped_resources() -> None:
    nodes = cluster_role("nodes", rule(["list"], ["nodes"]))
    rb = binding("RoleBinding", "rb", "ClusterRole", "nodes", [sa_subject()], "ns1")
    (grant,) = granted([nodes, rb])
    assert not covers(grant, K8sRequest(verb="list", resource="nodes"))


def test_role_is_looked_up_in_the_binding_namespace() -> None:
    r = role("reader", "ns1", rule(["get"], ["pods"]))
    assert granted([r, binding("RoleBinding", "rb", "Role", "reader", [sa_subject()], "ns1")]) == {get_pods("ns1")}
    inv = RbacInventory.from_objects([r, binding("RoleBinding", "rb", "Role", "reader", [sa_subject()], "ns2")])
    perms, notes = granted_permissions(inv, SA1_ID)
    assert perms == {} and any("missing Role reader" in n for n in notes)


def test_wildcards_are_one_permission_and_match_like_the_authorizer() -> None:
    star = cluster_role(
        "star",
        rule(["*"], ["*"], ["*"]),
        rule(["get"], ["*/scale"], ["apps"]),
        rule(["get"], ["pods/*"]),
    )
    crb = binding("ClusterRoleBinding", "crb", "ClusterRole", "star", [sa_subject()])
    perms = granted([star, crb])
    assert len(perms) == 3 and all(p.is_wildcard for p in perms if p.resource != "pods/*")
    everything = K8sPermission(verb="*", api_group="*", resource="*")
    scale = K8sPermission(verb="get", api_group="apps", resource="*/scale")
    pods_star = K8sPermission(verb="get", resource="pods/*")
    assert covers(everything, K8sRequest(verb="delete", api_group="batch", resource="jobs", namespace="x", name="j"))
    assert covers(everything, K8sRequest(verb="get", resource="pods", subresource="log", namespace="x", name="p"))
    assert covers(
        scale,
        K8sRequest(verb="get", api_group="apps", resource="deployments", subresource="scale", namespace="x", name="d"),
    )
    assert not covers(scale, K8sRequest(verb="get", api_group="apps", resource="deployments", namespace="x"))
    # RBAC has no `pods/*` form: it only matches a literal resource named "pods/*".
    assert not covers(pods_star, K8sRequest(verb="get", resource="pods", subresource="log", namespace="x"))


def test_wildcard_rule_lists_the_concrete_permissions_used() -> None:
    star = cluster_role("core-all", rule(["*"], ["*"]))
    rb = binding("RoleBinding", "rb", "ClusterRole", "core-all", [sa_subject()], "ns1")
    events = [
        audit_event("get", "configmaps", namespace="ns1", name="prompts"),
        audit_event("get", "configmaps", namespace="ns1", name="prompts"),
        audit_event("create", "pods", namespace="ns1", subresource="exec", name="runner"),
        audit_event("list", "secrets", namespace="ns2"),  # another namespace: outside the grant
    ]
    k8s, *_ = reconcile_kubernetes(RbacInventory.from_objects([star, rb]), events, SA1_ID)
    (usage,) = k8s.permissions
    assert usage.wildcard and usage.used and usage.call_count == 3
    assert set(usage.used_by) == {
        K8sRequest(verb="get", resource="configmaps", namespace="ns1", name="prompts"),
        K8sRequest(verb="create", resource="pods", subresource="exec", namespace="ns1", name="runner"),
    }
    assert [o.request for o in k8s.outside_grants] == [K8sRequest(verb="list", resource="secrets", namespace="ns2")]


def test_resource_names_restrict_only_named_requests() -> None:
    named = role("prompts", "ns1", rule(["get", "create", "list"], ["configmaps"], names=["agent-prompts"]))
    rb = binding("RoleBinding", "rb", "Role", "prompts", [sa_subject()], "ns1")
    events = [
        audit_event("get", "configmaps", namespace="ns1", name="agent-prompts"),
        audit_event("get", "configmaps", namespace="ns1", name="other"),
        # A POST to the collection is authorised without a name, although audit records it.
        audit_event("create", "configmaps", namespace="ns1", name="agent-prompts"),
        audit_event("list", "configmaps", namespace="ns1"),
    ]
    k8s, *_ = reconcile_kubernetes(RbacInventory.from_objects([named, rb]), events, SA1_ID)
    used = {u.permission.verb for u in k8s.permissions if u.used}
    assert used == {"get"}
    assert {o.request.label for o in k8s.outside_grants} == {
        "get core:configmaps name=other (ns ns1)",
        "create core:configmaps (ns ns1)",
        "list core:configmaps (ns ns1)",
    }


def test_non_resource_urls_only_through_cluster_role_bindings() -> None:
    metrics = cluster_role("metrics", rule(["get"], urls=["/metrics", "/debug/*"]))
    rb = binding("RoleBinding", "rb", "ClusterRole", "metrics", [sa_subject()], "ns1")
    assert granted([metrics, rb]) == set()
    crb = binding("ClusterRoleBinding", "crb", "ClusterRole", "metrics", [sa_subject()])
    events = [audit_event("get", uri="/debug/pprof/heap?seconds=5"), audit_event("get", uri="/api/v1")]
    k8s, *_ = reconcile_kubernetes(RbacInventory.from_objects([metrics, crb]), events, SA1_ID)
    used = {u.permission.non_resource_url: u.used for u in k8s.permissions}
    assert used == {"/metrics": False, "/debug/*": True}
    # /api/v1 is discovery: allowed to everyone by system:discovery, not an outside-grant finding
    assert k8s.outside_grants == []
    assert k8s.proposed_rbac[0]["rules"] == [{"nonResourceURLs": ["/debug/pprof/heap"], "verbs": ["get"]}]


def test_inventory_skips_foreign_objects_and_reports_bad_ones() -> None:
    inv = RbacInventory.from_objects(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa1", "namespace": "ns1"}},
            {**READ_PODS, "apiVersion": "rbac.authorization.k8s.io/v1beta1", "metadata": {"name": "old"}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "nons"}},
            {"apiVersion": "v1", "kind": "List", "items": [READ_PODS]},
        ]
    )
    assert list(inv.roles) == [("ClusterRole", None, "read-pods")]  # from inside the List
    assert any("v1beta1" in n for n in inv.notes) and any("namespace is missing" in n for n in inv.notes)


def test_the_same_atom_from_two_bindings_counts_once_with_both_sources() -> None:
    crb1 = binding("ClusterRoleBinding", "one", "ClusterRole", "read-pods", [sa_subject()])
    crb2 = binding("ClusterRoleBinding", "two", "ClusterRole", "read-pods", [group_subject("system:authenticated")])
    perms, _ = granted_permissions(RbacInventory.from_objects([READ_PODS, crb1, crb2]), SA1_ID)
    assert list(perms) == [get_pods(None)]
    assert [s.binding_name for s in perms[get_pods(None)]] == ["one", "two"]
