"""Pure handling of one API object before it is published: identity, key, redaction, revision index."""

from __future__ import annotations

import copy
import re
import threading
from typing import Any

from runward.core.contracts.revision import (
    POD_TEMPLATE_HASH_LABEL,
    PodTemplateRevision,
    merge_digests,
    pod_image_digests,
    template_hash,
)
from runward.core.redaction import REDACTED, redact_text, redact_value

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
DEPLOYMENT_REVISION = "deployment.kubernetes.io/revision"
_SECRET_NAME = re.compile(r"(?i)key|secret|token|password|passwd|credential")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+):[^@/\s]+@")


def metadata(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def object_key(obj: dict[str, Any]) -> str:
    """The record key the topic table names: `namespace/name`, or `name` for cluster-scoped objects."""
    meta = metadata(obj)
    namespace, name = meta.get("namespace"), str(meta.get("name") or "")
    return f"{namespace}/{name}" if namespace else name


def resource_version(obj: dict[str, Any]) -> str | None:
    value = metadata(obj).get("resourceVersion")
    return str(value) if value else None


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if obj.get("kind") == "Pod":
        return spec
    template = spec.get("template")
    inner = template.get("spec") if isinstance(template, dict) else None
    return inner if isinstance(inner, dict) else None


def _redact_env(pod_spec: dict[str, Any]) -> None:
    for field in ("containers", "initContainers", "ephemeralContainers"):
        for container in pod_spec.get(field) or []:
            for env in container.get("env") or []:
                value = env.get("value")
                if not isinstance(value, str) or not value:
                    continue  # valueFrom references name a Secret, they carry no secret
                if _SECRET_NAME.search(str(env.get("name", ""))):
                    env["value"] = REDACTED
                else:
                    env["value"] = _URL_PASSWORD.sub(rf"\1:{REDACTED}@", redact_text(value)[0])


def prepare(raw: dict[str, Any], kind: str, api_version: str) -> dict[str, Any]:
    """The object as published: list items get the kind and apiVersion the API server leaves out of
    them; managedFields (bookkeeping, often most of the bytes) and last-applied-configuration (a
    second copy of the spec, secrets included) are dropped; secret env values and annotations redacted."""
    obj = copy.deepcopy(raw)
    obj.setdefault("kind", kind)
    obj.setdefault("apiVersion", api_version)
    meta = metadata(obj)
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        meta["annotations"] = redact_value(annotations)[0]
    pod_spec = _pod_spec(obj)
    if pod_spec is not None:
        _redact_env(pod_spec)
    return obj


def _controller(meta: dict[str, Any], kind: str) -> str | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return str(ref.get("name"))
    return None


class RevisionIndex:
    """What the Deployment, ReplicaSet and Pod watches know of each other, to name revisions.

    Fed the raw objects (before redaction: a changed secret value is a changed template)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (namespace, ReplicaSet name) -> owner Deployment, its revision annotation, pod-template-hash, template hash
        self._replicasets: dict[tuple[str, str], tuple[str | None, str | None, str | None, str]] = {}
        # (namespace, pod-template-hash) -> pod name -> container digests
        self._pods: dict[tuple[str, str], dict[str, dict[str, str]]] = {}

    def observe(self, event_type: str, obj: dict[str, Any]) -> None:
        kind, meta = obj.get("kind"), metadata(obj)
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        with self._lock:
            if kind == "ReplicaSet":
                if event_type == "DELETED":
                    self._replicasets.pop((namespace, name), None)
                    return
                template = (obj.get("spec") or {}).get("template") or {}
                self._replicasets[(namespace, name)] = (
                    _controller(meta, "Deployment"),
                    (meta.get("annotations") or {}).get(DEPLOYMENT_REVISION),
                    (meta.get("labels") or {}).get(POD_TEMPLATE_HASH_LABEL),
                    template_hash(template),
                )
            elif kind == "Pod":
                pod_hash = (meta.get("labels") or {}).get(POD_TEMPLATE_HASH_LABEL)
                if not pod_hash:
                    return
                pods = self._pods.setdefault((namespace, pod_hash), {})
                if event_type == "DELETED":
                    pods.pop(name, None)
                else:
                    pods[name] = pod_image_digests(obj)

    def revision(self, obj: dict[str, Any]) -> PodTemplateRevision | None:
        kind, meta = obj.get("kind"), metadata(obj)
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        with self._lock:
            if kind == "Deployment":
                return self._deployment_revision(obj, namespace, name)
            if kind == "ReplicaSet":
                pod_hash = (meta.get("labels") or {}).get(POD_TEMPLATE_HASH_LABEL)
                return PodTemplateRevision(
                    template_hash=template_hash((obj.get("spec") or {}).get("template") or {}),
                    pod_template_hash=pod_hash,
                    image_digests=merge_digests(self._pods.get((namespace, pod_hash or ""), {}).values()),
                )
            if kind == "Pod":
                replica_set = _controller(meta, "ReplicaSet")
                known = self._replicasets.get((namespace, replica_set or ""))
                if known is None:
                    return None  # not a Deployment's pod, or its ReplicaSet not seen yet
                return PodTemplateRevision(
                    template_hash=known[3],
                    pod_template_hash=(meta.get("labels") or {}).get(POD_TEMPLATE_HASH_LABEL) or known[2],
                    image_digests=merge_digests([pod_image_digests(obj)]),
                )
        return None

    def _deployment_revision(self, obj: dict[str, Any], namespace: str, name: str) -> PodTemplateRevision:
        template = (obj.get("spec") or {}).get("template") or {}
        own_hash = template_hash(template)
        current = (metadata(obj).get("annotations") or {}).get(DEPLOYMENT_REVISION)
        pod_hash: str | None = None
        for (rs_namespace, _), (owner, revision, rs_pod_hash, rs_template_hash) in self._replicasets.items():
            # The current ReplicaSet: the controller stamps it with the Deployment's revision number;
            # its template must match, or the Deployment was edited and the controller has not caught up.
            if rs_namespace == namespace and owner == name and revision == current and rs_template_hash == own_hash:
                pod_hash = rs_pod_hash
                break
        digests = self._pods.get((namespace, pod_hash), {}).values() if pod_hash else ()
        return PodTemplateRevision(
            template_hash=own_hash, pod_template_hash=pod_hash, image_digests=merge_digests(digests)
        )
