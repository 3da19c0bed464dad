"""Granted side for Kubernetes: RBAC manifests → atomic permissions bound to one identity.

Mirrors the API server's RBAC authorizer (plugin/pkg/auth/authorizer/rbac) closely enough
that "granted" here means what the cluster would allow, not what the YAML looks like.
ClusterRole aggregation (`aggregationRule`) is not resolved: only the `rules` present in a
manifest count. A dump taken from a live cluster already has aggregated rules filled in by
the controller; hand-written manifests relying on aggregation are reported in `notes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from runward.core.contracts.reconciliation import SA_USER_PREFIX, GrantSource, K8sPermission

RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
_ROLE_KINDS = {"Role", "ClusterRole"}
_BINDING_KINDS = {"RoleBinding", "ClusterRoleBinding"}

RoleKind = Literal["Role", "ClusterRole"]
BindingKind = Literal["RoleBinding", "ClusterRoleBinding"]


@dataclass(frozen=True, slots=True)
class PolicyRule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RoleObject:
    kind: RoleKind
    name: str
    namespace: str | None
    rules: tuple[PolicyRule, ...]
    aggregated: bool = False


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str
    name: str
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class BindingObject:
    kind: BindingKind
    name: str
    namespace: str | None
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]


@dataclass(frozen=True, slots=True)
class Identity:
    """What the authorizer knows about a caller: username and groups."""

    username: str
    groups: tuple[str, ...] = ()


@dataclass
class RbacInventory:
    roles: dict[tuple[str, str | None, str], RoleObject] = field(default_factory=dict)
    bindings: list[BindingObject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_objects(cls, objects: Iterable[Mapping[str, Any]]) -> RbacInventory:
        inventory = cls()
        for obj in _flatten_lists(objects):
            inventory.add(obj)
        return inventory

    def add(self, obj: Mapping[str, Any]) -> None:
        kind = str(obj.get("kind", ""))
        if kind not in _ROLE_KINDS | _BINDING_KINDS:
            return  # manifests usually mix in ServiceAccounts, Deployments...: not our concern
        meta = obj.get("metadata") or {}
        name = str(meta.get("name", ""))
        if obj.get("apiVersion") != RBAC_API_VERSION:
            self.notes.append(f"skipped {kind} {name}: apiVersion {obj.get('apiVersion')!r} is not {RBAC_API_VERSION}")
            return
        namespace = meta.get("namespace") if kind in {"Role", "RoleBinding"} else None
        if kind in {"Role", "RoleBinding"} and not namespace:
            # kubectl would fill the context's namespace; we cannot guess it.
            self.notes.append(f"skipped {kind} {name}: metadata.namespace is missing")
            return
        if kind in _ROLE_KINDS:
            self._add_role(kind, name, namespace, obj)
        else:
            self._add_binding(kind, name, namespace, obj)

    def _add_role(self, kind: str, name: str, namespace: str | None, obj: Mapping[str, Any]) -> None:
        aggregated = bool(obj.get("aggregationRule"))
        rules = tuple(_parse_rule(r) for r in obj.get("rules") or [])
        if aggregated:
            self.notes.append(
                f"ClusterRole {name} uses aggregationRule: aggregated rules are not resolved, "
                f"only the {len(rules)} rule(s) in the manifest are counted"
            )
        role = RoleObject(cast(RoleKind, kind), name, namespace, rules, aggregated)
        self.roles[(kind, namespace, name)] = role

    def _add_binding(self, kind: str, name: str, namespace: str | None, obj: Mapping[str, Any]) -> None:
        ref = obj.get("roleRef") or {}
        subjects = tuple(
            Subject(str(s.get("kind", "")), str(s.get("name", "")), s.get("namespace") or None)
            for s in obj.get("subjects") or []
        )
        role_kind, role_name = str(ref.get("kind", "")), str(ref.get("name", ""))
        binding = BindingObject(cast(BindingKind, kind), name, namespace, role_kind, role_name, subjects)
        self.bindings.append(binding)


def _flatten_lists(objects: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    # `kubectl get -o yaml` returns `kind: List` (or `RoleList`...) with the objects in `items`.
    for obj in objects:
        if obj is None:
            continue
        if isinstance(obj.get("items"), list):
            yield from _flatten_lists(obj["items"])
        else:
            yield obj


def _parse_rule(rule: Mapping[str, Any]) -> PolicyRule:
    def strings(key: str) -> tuple[str, ...]:
        return tuple(str(v) for v in rule.get(key) or [])

    return PolicyRule(
        verbs=strings("verbs"),
        api_groups=strings("apiGroups"),
        resources=strings("resources"),
        resource_names=strings("resourceNames"),
        non_resource_urls=strings("nonResourceURLs"),
    )


def subject_applies(subject: Subject, identity: Identity, binding_namespace: str | None) -> bool:
    """The authorizer's appliesToUser: an SA subject without namespace means the binding's own."""
    if subject.kind == "User":
        return subject.name == identity.username
    if subject.kind == "Group":
        return subject.name in identity.groups
    if subject.kind == "ServiceAccount":
        namespace = subject.namespace or binding_namespace
        return bool(namespace) and identity.username == f"{SA_USER_PREFIX}{namespace}:{subject.name}"
    return False


def granted_permissions(
    inventory: RbacInventory, identity: Identity
) -> tuple[dict[K8sPermission, list[GrantSource]], list[str]]:
    """Every atomic permission the identity holds, with the binding chain(s) granting it."""
    granted: dict[K8sPermission, list[GrantSource]] = {}
    notes: list[str] = []
    for binding in inventory.bindings:
        subject = next((s for s in binding.subjects if subject_applies(s, identity, binding.namespace)), None)
        if subject is None:
            continue
        role = _resolve_role(inventory, binding, notes)
        if role is None:
            continue
        source = GrantSource(
            binding_kind=binding.kind,
            binding_name=binding.name,
            binding_namespace=binding.namespace,
            role_kind=role.kind,
            role_name=role.name,
            subject=_subject_label(subject, binding.namespace),
        )
        for rule in role.rules:
            for permission in expand_rule(rule, binding.namespace):
                sources = granted.setdefault(permission, [])
                if source not in sources:
                    sources.append(source)
    return granted, notes


def _subject_label(subject: Subject, binding_namespace: str | None) -> str:
    if subject.kind == "ServiceAccount":
        return f"ServiceAccount:{subject.namespace or binding_namespace}/{subject.name}"
    return f"{subject.kind}:{subject.name}"


def _resolve_role(inventory: RbacInventory, binding: BindingObject, notes: list[str]) -> RoleObject | None:
    if binding.kind == "ClusterRoleBinding" and binding.role_kind != "ClusterRole":
        notes.append(f"ClusterRoleBinding {binding.name} refers to a {binding.role_kind}: invalid, grants nothing")
        return None
    role_namespace = binding.namespace if binding.role_kind == "Role" else None
    role = inventory.roles.get((binding.role_kind, role_namespace, binding.role_name))
    if role is None:
        where = f"{binding.namespace}/" if binding.namespace else ""
        missing = f"{binding.role_kind} {binding.role_name}"
        notes.append(
            f"{binding.kind} {where}{binding.name} refers to missing {missing}: "
            "grants nothing from the supplied manifests"
        )
    return role


def expand_rule(rule: PolicyRule, namespace: str | None) -> Iterable[K8sPermission]:
    """A rule → its atomic permissions in the binding's scope (None: cluster-wide)."""
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                for name in rule.resource_names or (None,):
                    yield K8sPermission(
                        verb=verb, api_group=group, resource=resource, namespace=namespace, resource_name=name
                    )
    # Non-resource URLs are only evaluated against ClusterRoleBindings: a request for
    # /metrics has no namespace, so a RoleBinding can never apply to it.
    if namespace is None:
        for url in rule.non_resource_urls:
            for verb in rule.verbs:
                yield K8sPermission(verb=verb, non_resource_url=url)


def identity_for(username: str, groups: Sequence[str] = ()) -> Identity:
    return Identity(username=username, groups=tuple(groups))
