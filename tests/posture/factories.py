"""Small builders for synthetic audit events and RBAC objects in the unit tests."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "posture"
_ids = itertools.count(1)
SA1 = "system:serviceaccount:ns1:sa1"


def audit_event(
    verb: str,
    resource: str | None = None,
    *,
    username: str = SA1,
    namespace: str | None = None,
    name: str | None = None,
    group: str = "",
    subresource: str = "",
    code: int = 200,
    audit_id: str | None = None,
    stage: str = "ResponseComplete",
    uri: str = "/synthetic",
    impersonated: dict[str, Any] | None = None,
    ts: str = "2024-05-01T10:00:00.000000Z",
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id or f"synthetic-{next(_ids):06d}",
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": {"username": username, "groups": ["system:authenticated"]},
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": ts,
        "stageTimestamp": ts,
    }
    if impersonated is not None:
        event["impersonatedUser"] = impersonated
    if resource is not None:
        ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
        if group:
            ref["apiGroup"] = group
        if subresource:
            ref["subresource"] = subresource
        if namespace:
            ref["namespace"] = namespace
        if name:
            ref["name"] = name
        event["objectRef"] = ref
    return event


def cluster_role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": list(rules),
    }


def role(name: str, namespace: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": list(rules),
    }


def rule(
    verbs: list[str],
    resources: list[str] | None = None,
    groups: list[str] | None = None,
    names: list[str] | None = None,
    urls: list[str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"verbs": verbs}
    if resources is not None:
        out["apiGroups"] = groups if groups is not None else [""]
        out["resources"] = resources
    if names:
        out["resourceNames"] = names
    if urls:
        out["nonResourceURLs"] = urls
    return out


def binding(
    kind: str,
    name: str,
    role_kind: str,
    role_name: str,
    subjects: list[dict[str, Any]],
    namespace: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": subjects,
    }


def sa_subject(name: str = "sa1", namespace: str | None = "ns1") -> dict[str, Any]:
    subject: dict[str, Any] = {"kind": "ServiceAccount", "name": name}
    if namespace:
        subject["namespace"] = namespace
    return subject


def group_subject(name: str) -> dict[str, Any]:
    return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def user_subject(name: str) -> dict[str, Any]:
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}
