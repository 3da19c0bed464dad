"""Seccomp delivered the Kubernetes way, next to the OCI JSON of the bundle:

- a Security Profiles Operator `SeccompProfile` (`security-profiles-operator.x-k8s.io/v1beta1`)
  holding the same profile: the operator writes it to every node's kubelet seccomp directory as
  `operator/<namespace>/<name>.json`, so nobody copies files onto nodes;
- a strategic-merge patch of the Deployment (a kustomize `patches:` entry: apiVersion, kind and
  metadata name it) that sets the pods' `securityContext.seccompProfile` to that localhost profile.

Audit and enforce only (observe applies nothing); in audit the profile logs instead of refusing
(`SCMP_ACT_LOG`, kernel audit type 1326). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubernetes.client import V1PodSecurityContext, V1SeccompProfile

from runward.core.contracts import ApdRevision, EnforcementMode
from services.enforcer.policies import MANAGED_BY, SERIALIZER, policy_annotations, policy_name, seccomp_profile

SPO_API_VERSION = "security-profiles-operator.x-k8s.io/v1beta1"


def localhost_profile(apd: ApdRevision) -> str:
    """Where the Security Profiles Operator installs the profile, relative to the kubelet's seccomp root."""
    namespace, name = policy_name(apd)
    return f"operator/{namespace}/{name}.json"


def seccomp_profile_object(
    apd: ApdRevision,
    mode: EnforcementMode,
    runtime_syscalls: Sequence[str] = (),
    profile: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The SeccompProfile holding `seccomp_profile(apd, mode, runtime_syscalls)` (`profile`, if
    already built: the object takes its parts, so it must be the object's own copy)."""
    if mode is EnforcementMode.OBSERVE:
        return None
    namespace, name = policy_name(apd)
    profile = seccomp_profile(apd, mode, runtime_syscalls) if profile is None else profile
    spec: dict[str, Any] = {"defaultAction": profile["defaultAction"], "architectures": profile["architectures"]}
    if profile["syscalls"]:
        spec["syscalls"] = profile["syscalls"]
    return {
        "apiVersion": SPO_API_VERSION,
        "kind": "SeccompProfile",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(MANAGED_BY),
            "annotations": policy_annotations(apd, mode),
        },
        "spec": spec,
    }


def deployment_patch(apd: ApdRevision, mode: EnforcementMode) -> dict[str, Any] | None:
    """The Deployment patch that makes its pods run under the SeccompProfile above."""
    if mode is EnforcementMode.OBSERVE:
        return None
    namespace, _, deployment = apd.deployment.partition("/")
    context = V1PodSecurityContext(
        seccomp_profile=V1SeccompProfile(type="Localhost", localhost_profile=localhost_profile(apd))
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment, "namespace": namespace},
        "spec": {"template": {"spec": {"securityContext": SERIALIZER.sanitize_for_serialization(context)}}},
    }
