"""A least-privilege Role/ClusterRole from observed requests, the way audit2rbac builds one.

Same algorithm as liggitt/audit2rbac (pkg/process.go, pkg/util.go): requests are sorted
broadest first (non-resource, cluster-scoped, unnamed, list before get); a request already
covered by a generated rule adds nothing; each verb is widened by the same expansions
(a client that lists almost always watches and gets); namespaced requests go into a Role
in their namespace, cluster-scoped ones into a ClusterRole; rules are compacted.

One deliberate difference: audit2rbac by default turns a request seen in several
namespaces into a cluster-wide grant. For an agent's least privilege we keep one Role per
namespace unless `expand_multiple_namespaces_to_cluster` is set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import (
    ApiClient,
    RbacV1Subject,
    V1ClusterRole,
    V1ClusterRoleBinding,
    V1ObjectMeta,
    V1PolicyRule,
    V1Role,
    V1RoleBinding,
    V1RoleRef,
)

from jobs.reconciliation.audit import is_discovery
from jobs.reconciliation.matching import covers
from jobs.reconciliation.rbac import RBAC_API_VERSION
from runward.core.contracts.reconciliation import SA_USER_PREFIX, K8sPermission, K8sRequest

VERB_EXPANSIONS: Mapping[str, tuple[str, ...]] = {
    "watch": ("get", "list"),
    "list": ("get", "watch"),
    "update": ("get", "patch"),
    "patch": ("get", "update"),
}
RBAC_GROUP = "rbac.authorization.k8s.io"

# (apiGroup, verbs, resourceNames) of a compacted rule; resourceNames is () when unnamed.
_RuleKey = tuple[str, tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True)
class ProposalOptions:
    name: str | None = None
    verb_expansions: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(VERB_EXPANSIONS))
    expand_multiple_names_to_unnamed: bool = True
    expand_multiple_namespaces_to_cluster: bool = False
    # audit2rbac covers every request, denied ones included: it exists to turn 403s into
    # roles. For least privilege the default is only what succeeded; a call the agent ran
    # without is not proven necessary and is reported as a denied attempt instead.
    include_denied: bool = False


def _sort_key(r: K8sRequest) -> tuple[Any, ...]:
    verb_rank = {"list": 0, "get": 1}.get(r.verb, 2) if r.non_resource_path is None else 0
    return (
        r.non_resource_path is None,  # non-resource first
        r.namespace is not None,  # cluster-scoped before namespaced
        r.name is not None,  # unnamed before named
        verb_rank,
        r.api_group,
        r.resource,
        r.subresource,
        r.namespace or "",
        r.name or "",
        r.verb,
        r.non_resource_path or "",
    )


def _widen(request: K8sRequest, requests: list[K8sRequest], options: ProposalOptions) -> K8sRequest:
    """audit2rbac's ExpandMultipleNamesToUnnamed / ExpandMultipleNamespacesToClusterScoped."""
    expand_ns = options.expand_multiple_namespaces_to_cluster
    expand_names = options.expand_multiple_names_to_unnamed
    if not ((request.namespace and expand_ns) or (request.name and expand_names)):
        return request

    def blanked(r: K8sRequest) -> K8sRequest:
        return r.model_copy(
            update={"name": None if expand_names else r.name, "namespace": None if expand_ns else r.namespace}
        )

    me = blanked(request)
    drop_ns = drop_name = False
    for other in requests:
        if other.non_resource_path is not None or blanked(other) != me:
            continue
        drop_ns |= expand_ns and other.namespace is not None and other.namespace != request.namespace
        drop_name |= expand_names and other.name is not None and other.name != request.name
    return request.model_copy(
        update={
            "namespace": None if drop_ns else request.namespace,
            "name": None if drop_name else request.name,
        }
    )


def generate_permissions(requests: Iterable[K8sRequest], options: ProposalOptions) -> list[K8sPermission]:
    """The atomic permissions of the proposal (before compaction into rules)."""
    pending = sorted({r for r in requests if not is_discovery(r)}, key=_sort_key)
    generated: list[K8sPermission] = []
    for request in pending:
        if any(covers(p, request) for p in generated):
            continue
        if request.non_resource_path is not None:
            generated.append(K8sPermission(verb=request.verb, non_resource_url=request.non_resource_path))
            continue
        widened = _widen(request, pending, options)
        for verb in (widened.verb, *options.verb_expansions.get(widened.verb, ())):
            atom = K8sPermission(
                verb=verb,
                api_group=widened.api_group,
                resource=widened.combined_resource,
                namespace=widened.namespace,
                resource_name=widened.name,
            )
            if atom not in generated:
                generated.append(atom)
    return generated


def compact_rules(permissions: Iterable[K8sPermission]) -> list[V1PolicyRule]:
    """Merge atoms into rules: verbs per (group, resource, name), then names, then resources."""
    verbs_of: dict[tuple[str, str, str | None], set[str]] = {}
    url_verbs: dict[str, set[str]] = {}
    for p in permissions:
        if p.non_resource_url is not None:
            url_verbs.setdefault(p.non_resource_url, set()).add(p.verb)
        else:
            verbs_of.setdefault((p.api_group, p.resource, p.resource_name), set()).add(p.verb)

    names_of: dict[tuple[str, str, tuple[str, ...]], set[str]] = {}
    resources_of: dict[_RuleKey, set[str]] = {}
    for (group, resource, name), verbs in verbs_of.items():
        if name is None:
            resources_of.setdefault((group, tuple(sorted(verbs)), ()), set()).add(resource)
        else:
            names_of.setdefault((group, resource, tuple(sorted(verbs))), set()).add(name)
    for (group, resource, verb_key), names in names_of.items():
        resources_of.setdefault((group, verb_key, tuple(sorted(names))), set()).add(resource)

    ordered = sorted(resources_of.items(), key=lambda kv: (kv[0][0], sorted(kv[1]), kv[0][1], kv[0][2]))
    rules = [
        V1PolicyRule(
            api_groups=[group],
            resources=sorted(resources),
            verbs=list(verbs),
            resource_names=list(names) or None,
        )
        for (group, verbs, names), resources in ordered
    ]
    urls_by_verbs: dict[tuple[str, ...], list[str]] = {}
    for url, verbs in sorted(url_verbs.items()):
        urls_by_verbs.setdefault(tuple(sorted(verbs)), []).append(url)
    rules += [V1PolicyRule(non_resource_urls=u, verbs=list(v)) for v, u in urls_by_verbs.items()]
    return rules


def _label_value(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].strip("-")


def _subject(username: str) -> Any:
    if username.startswith(SA_USER_PREFIX):
        namespace, _, name = username.removeprefix(SA_USER_PREFIX).partition(":")
        return RbacV1Subject(kind="ServiceAccount", name=name, namespace=namespace)
    return RbacV1Subject(kind="User", name=username, api_group=RBAC_GROUP)


def default_name(username: str) -> str:
    # audit2rbac names objects after the SA's short name unless it is the ambiguous `default`.
    short = ""
    if username.startswith(SA_USER_PREFIX):
        short = username.removeprefix(SA_USER_PREFIX).split(":")[-1]
    if not short or short == "default":
        short = re.sub(r"[^a-z0-9:]", "-", username.lower())
    return f"runward:least-privilege:{short}"


def propose_rbac(
    requests: Iterable[K8sRequest], username: str, options: ProposalOptions | None = None
) -> list[dict[str, Any]]:
    """Roles/ClusterRole and their bindings covering `requests`, as API dicts.

    Order matches audit2rbac's output: ClusterRole, ClusterRoleBinding, Roles, RoleBindings.
    """
    options = options or ProposalOptions()
    name = options.name or default_name(username)
    labels = {"app.kubernetes.io/managed-by": "runward", "runward.dev/subject": _label_value(username)}
    atoms = generate_permissions(requests, options)
    cluster_atoms = [a for a in atoms if a.namespace is None]
    namespaces = sorted({a.namespace for a in atoms if a.namespace is not None})

    objects: list[Any] = []
    bindings: list[Any] = []
    if cluster_atoms:
        objects.append(
            V1ClusterRole(
                api_version=RBAC_API_VERSION,
                kind="ClusterRole",
                metadata=V1ObjectMeta(name=name, labels=labels),
                rules=compact_rules(cluster_atoms),
            )
        )
        objects.append(
            V1ClusterRoleBinding(
                api_version=RBAC_API_VERSION,
                kind="ClusterRoleBinding",
                metadata=V1ObjectMeta(name=name, labels=labels),
                role_ref=V1RoleRef(api_group=RBAC_GROUP, kind="ClusterRole", name=name),
                subjects=[_subject(username)],
            )
        )
    for namespace in namespaces:
        objects.append(
            V1Role(
                api_version=RBAC_API_VERSION,
                kind="Role",
                metadata=V1ObjectMeta(name=name, namespace=namespace, labels=labels),
                rules=compact_rules(a for a in atoms if a.namespace == namespace),
            )
        )
        bindings.append(
            V1RoleBinding(
                api_version=RBAC_API_VERSION,
                kind="RoleBinding",
                metadata=V1ObjectMeta(name=name, namespace=namespace, labels=labels),
                role_ref=V1RoleRef(api_group=RBAC_GROUP, kind="Role", name=name),
                subjects=[_subject(username)],
            )
        )
    serialized: list[dict[str, Any]] = ApiClient().sanitize_for_serialization(objects + bindings)
    return serialized
