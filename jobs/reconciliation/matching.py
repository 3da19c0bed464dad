"""Does a granted permission cover a request? The RBAC authorizer's RuleAllows, per atom."""

from __future__ import annotations

from runward.core.contracts.reconciliation import K8sPermission, K8sRequest

ALL = "*"


def verb_matches(granted: str, verb: str) -> bool:
    return granted in (ALL, verb)


def resource_matches(granted: str, request: K8sRequest) -> bool:
    # `*` covers every resource and subresource; `*/scale` covers any resource's scale
    # subresource; there is no `pods/*` form in RBAC, so it only matches literally.
    if granted in (ALL, request.combined_resource):
        return True
    return bool(request.subresource) and granted == f"*/{request.subresource}"


def non_resource_matches(granted: str, path: str) -> bool:
    if granted in (ALL, path):
        return True
    return granted.endswith("*") and path.startswith(granted[:-1])


def covers(permission: K8sPermission, request: K8sRequest) -> bool:
    if not verb_matches(permission.verb, request.verb):
        return False
    if request.non_resource_path is not None:
        return permission.non_resource_url is not None and non_resource_matches(
            permission.non_resource_url, request.non_resource_path
        )
    if permission.non_resource_url is not None:
        return False
    # A RoleBinding's grant applies only to requests in its namespace; a cluster-scoped
    # request (nodes, or pods across all namespaces) needs a ClusterRoleBinding.
    if permission.namespace is not None and permission.namespace != request.namespace:
        return False
    if permission.api_group not in (ALL, request.api_group):
        return False
    if not resource_matches(permission.resource, request):
        return False
    # resourceNames has no wildcard form: `*` there is a literal name.
    return permission.resource_name is None or permission.resource_name == request.name
