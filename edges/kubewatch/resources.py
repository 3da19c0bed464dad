"""The objects the watcher follows and the client calls that list and watch them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """One API resource: its kind, the typed API class and its list calls (watch is a list with watch=true)."""

    name: str
    kind: str
    api_version: str
    api: str
    list_all: str
    list_namespaced: str | None  # None: cluster-scoped

    @property
    def namespaced(self) -> bool:
        return self.list_namespaced is not None


# Listed in this order at start: ReplicaSets before Pods (a Pod's revision is its ReplicaSet's),
# both before Deployments (a Deployment's revision is refined by its ReplicaSet and pods).
RESOURCES: tuple[Resource, ...] = (
    Resource(
        "replicasets",
        "ReplicaSet",
        "apps/v1",
        "AppsV1Api",
        "list_replica_set_for_all_namespaces",
        "list_namespaced_replica_set",
    ),
    Resource("pods", "Pod", "v1", "CoreV1Api", "list_pod_for_all_namespaces", "list_namespaced_pod"),
    Resource(
        "deployments",
        "Deployment",
        "apps/v1",
        "AppsV1Api",
        "list_deployment_for_all_namespaces",
        "list_namespaced_deployment",
    ),
    Resource(
        "serviceaccounts",
        "ServiceAccount",
        "v1",
        "CoreV1Api",
        "list_service_account_for_all_namespaces",
        "list_namespaced_service_account",
    ),
    Resource(
        "roles",
        "Role",
        "rbac.authorization.k8s.io/v1",
        "RbacAuthorizationV1Api",
        "list_role_for_all_namespaces",
        "list_namespaced_role",
    ),
    Resource(
        "rolebindings",
        "RoleBinding",
        "rbac.authorization.k8s.io/v1",
        "RbacAuthorizationV1Api",
        "list_role_binding_for_all_namespaces",
        "list_namespaced_role_binding",
    ),
    # Cluster-scoped: watched whatever the namespace filter, since they grant rights in every namespace.
    Resource(
        "clusterroles",
        "ClusterRole",
        "rbac.authorization.k8s.io/v1",
        "RbacAuthorizationV1Api",
        "list_cluster_role",
        None,
    ),
    Resource(
        "clusterrolebindings",
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io/v1",
        "RbacAuthorizationV1Api",
        "list_cluster_role_binding",
        None,
    ),
)
BY_NAME: dict[str, Resource] = {r.name: r for r in RESOURCES}
