"""The documents of a policy bundle, built once for each distinct set of inputs.

A bundle goes out for every APD revision, proof, story and decision, but its documents depend on
few of their fields: the NetworkPolicy, CiliumNetworkPolicy and Calico policy on the APD's
network behaviours, selector, name and revision (their annotations) and the mode; the seccomp
profile on the syscalls, the runtime's syscalls and the mode; the Deployment patch on the name
and mode; the tool policy on the tools and their argument rules. While an agent is enforced its
policies are built from its frozen revision, so they never change between approvals; while it
learns, most revisions add nothing to most of them. Each group is kept by a digest of exactly
those inputs (`memo`), marshalled (the tool policy as its JSON), and every bundle gets its own
copy (`marshal.loads`: several times faster than copying the dicts in Python, and the same types
back), so a bundle is byte for byte what building it afresh gives and nothing done to one
reaches another (tests/unit/test_enforcer_outputs.py).

The builders (`policies`, `cni`, `workload`, `tool_policy`) stay the one definition of each
document: the NetworkPolicy is still the kubernetes client models' serialisation. Pure: no I/O.
"""

from __future__ import annotations

import marshal
from collections.abc import Sequence
from typing import Any

from runward.core.contracts import ApdRevision, BundleToolPolicy, EnforcementMode, Syscall, ToolCall
from services.enforcer.cni import calico_policy, cilium_network_policy
from services.enforcer.memo import Memo, digest
from services.enforcer.policies import (
    DESTINATION_CATEGORIES,
    Destinations,
    destinations,
    egress_allowlist,
    network_policy,
    seccomp_profile,
)
from services.enforcer.tool_policy import tool_policy
from services.enforcer.workload import deployment_patch, seccomp_profile_object

Network = tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]

# Marshalled documents, a few entries per agent whose documents are current; beyond that,
# builds, never staleness.
_NETWORK: Memo[bytes] = Memo(512)
_SECCOMP: Memo[bytes] = Memo(1024)
_PATCH: Memo[bytes] = Memo(1024)
_TOOLS: Memo[bytes] = Memo(1024)
# Shared, not copied: the builders only read them (sort them into their own lists).
_DESTINATIONS: Memo[Destinations] = Memo(1024)


def _network(source: ApdRevision, mode: EnforcementMode, found: Destinations | None = None) -> Network:
    return (
        network_policy(source, mode, found),
        cilium_network_policy(source, mode, found),
        calico_policy(source, mode, found),
    )


def _kept_network(source: ApdRevision, mode: EnforcementMode) -> Network:
    if mode is EnforcementMode.OBSERVE or not source.pod_selector:
        # None of the three renders (the builders return at once): nothing to keep, and a
        # learning agent's every revision would otherwise take a place in the memo.
        return _network(source, mode)
    behaviours = [source.behaviours.get(category) for category in DESTINATION_CATEGORIES]
    inputs = digest("network", source.deployment, source.revision, mode, source.pod_selector, behaviours)

    def build() -> bytes:
        # Resolved once for the three (each would parse and resolve the same keys), and kept: in
        # audit each revision renders anew (its number is in the documents), its peers seldom change.
        found = _DESTINATIONS.get(digest("destinations", behaviours), lambda: destinations(source))
        return marshal.dumps(_network(source, mode, found))

    kept = _NETWORK.get(inputs, build)
    policy, cilium, calico = marshal.loads(kept)
    return policy, cilium, calico


def documents(source: ApdRevision, mode: EnforcementMode, runtime_syscalls: Sequence[str]) -> dict[str, Any]:
    """The bundle's documents of `source` (the APD its policies are built from, with the
    Deployment's selector) at `mode`, the seccomp profile allowing `runtime_syscalls` too: the
    `PolicyBundle` fields, each the bundle's own. Built in the order the bundle always built
    them, so a corrupt APD is refused for the same key."""
    runtime = list(runtime_syscalls)
    allowlist = egress_allowlist(source)
    policy, cilium, calico = _kept_network(source, mode)
    profile = _SECCOMP.get(
        digest("seccomp", mode, source.behaviours.get(Syscall.CATEGORY), runtime),
        lambda: marshal.dumps(seccomp_profile(source, mode, runtime)),
    )
    patch = _PATCH.get(digest("patch", source.deployment, mode), lambda: marshal.dumps(deployment_patch(source, mode)))
    return {
        "egress_allowlist": allowlist,
        "network_policy": policy,
        "cilium_network_policy": cilium,
        "calico_policy": calico,
        "seccomp_profile": marshal.loads(profile),
        "seccomp_profile_object": seccomp_profile_object(source, mode, runtime, marshal.loads(profile)),
        "deployment_patch": marshal.loads(patch),
        "tool_policy": BundleToolPolicy.model_validate_json(
            _TOOLS.get(
                digest("tools", source.behaviours.get(ToolCall.CATEGORY), source.tool_arguments),
                lambda: tool_policy(source).model_dump_json().encode(),
            )
        ),
    }
