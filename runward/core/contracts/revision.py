"""What a Deployment revision is: the pod template it runs, not `metadata.generation`.

`metadata.generation` moves on every spec change, scaling included, and an annotation or label
change on the Deployment moves its `resourceVersion`: neither changes what the agent's pods run,
so neither may open a drift window an attacker could hide in. A revision is what the pods carry:

- `template_hash`: sha256 of the normalised pod template. Normalised means
  * the template's metadata is dropped (labels, `kubectl rollout restart`'s `restartedAt`) except
    `runward.io/*` annotations, which carry the model and MCP configuration the agent loads;
  * placement and sizing are dropped (node selection, tolerations, affinity, priority, resources,
    probes, pull policy): they move pods, they do not change what the pods do;
  * everything else stays: images, command, args, env (values and references), mounted
    ConfigMaps/Secrets, service account, security context, host namespaces.
  A ReplicaSet's template is its Deployment's plus the `pod-template-hash` label, so both hash alike.
- `pod_template_hash`: the label the Deployment controller gives the current ReplicaSet and its
  pods, when known: it names the revision on a Pod.
- `image_digests`: container name -> the digests its pods actually run (Pod
  `status.containerStatuses[].imageID`), when known. A moved tag gives new digests under the same
  template: a different image is a different revision even when the template is not.

Pure: dicts as the API server returns them in, a `PodTemplateRevision` out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RUNWARD_ANNOTATION_PREFIX = "runward.io/"
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"

# Where the scheduler puts the pod and how big it is: a rollout of these alone runs the same agent.
_PLACEMENT_KEYS = frozenset(
    {
        "affinity",
        "nodeName",
        "nodeSelector",
        "overhead",
        "preemptionPolicy",
        "priority",
        "priorityClassName",
        "resources",
        "schedulerName",
        "schedulingGates",
        "terminationGracePeriodSeconds",
        "tolerations",
        "topologySpreadConstraints",
    }
)
_CONTAINER_PLACEMENT_KEYS = frozenset(
    {
        "imagePullPolicy",
        "livenessProbe",
        "readinessProbe",
        "resizePolicy",
        "resources",
        "startupProbe",
        "terminationMessagePath",
        "terminationMessagePolicy",
    }
)
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class PodTemplateRevision(BaseModel):
    """A Deployment revision as its pods run it (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    template_hash: str = Field(description="sha256 of the normalised pod template: the revision's identity")
    pod_template_hash: str | None = Field(
        default=None, description="the current ReplicaSet's pod-template-hash label, when known"
    )
    image_digests: dict[str, list[str]] = Field(
        default_factory=dict, description="container name -> sorted image digests its pods run, when known"
    )


def normalised_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a pod template that decides what the agent runs."""
    metadata = template.get("metadata") or {}
    annotations = {
        key: value
        for key, value in (metadata.get("annotations") or {}).items()
        if key.startswith(RUNWARD_ANNOTATION_PREFIX)
    }
    spec = {key: value for key, value in (template.get("spec") or {}).items() if key not in _PLACEMENT_KEYS}
    for field in _CONTAINER_LISTS:
        if field in spec:
            spec[field] = [
                {key: value for key, value in container.items() if key not in _CONTAINER_PLACEMENT_KEYS}
                for container in spec[field] or []
            ]
    return {"annotations": annotations, "spec": spec}


def template_hash(template: Mapping[str, Any]) -> str:
    canonical = json.dumps(normalised_template(template), sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def pod_image_digests(pod: Mapping[str, Any]) -> dict[str, str]:
    """Container name -> the digest it runs, from a Pod's status (containers that have started)."""
    status = pod.get("status") or {}
    digests: dict[str, str] = {}
    for field in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(field) or []:
            found = _DIGEST.search(container.get("imageID") or "")
            if found and container.get("name"):
                digests[str(container["name"])] = found.group(0)
    return digests


def merge_digests(pods_digests: Iterable[Mapping[str, str]]) -> dict[str, list[str]]:
    """Digests of several pods of one revision; more than one digest for a container means its tag moved."""
    merged: dict[str, set[str]] = {}
    for digests in pods_digests:
        for container, digest in digests.items():
            merged.setdefault(container, set()).add(digest)
    return {container: sorted(found) for container, found in sorted(merged.items())}


def pod_template_revision(
    template: Mapping[str, Any],
    pod_template_hash: str | None = None,
    pods_digests: Iterable[Mapping[str, str]] = (),
) -> PodTemplateRevision:
    """The revision of a Deployment or ReplicaSet template, refined by what its pods report."""
    return PodTemplateRevision(
        template_hash=template_hash(template),
        pod_template_hash=pod_template_hash,
        image_digests=merge_digests(pods_digests),
    )


def same_revision(a: PodTemplateRevision, b: PodTemplateRevision) -> bool:
    """Same template and, for every container both know, the same digests."""
    if a.template_hash != b.template_hash:
        return False
    shared = a.image_digests.keys() & b.image_digests.keys()
    return all(a.image_digests[c] == b.image_digests[c] for c in shared)
