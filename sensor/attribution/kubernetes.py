"""Kubernetes resolver: cgroup path -> pod (by UID) -> ReplicaSet -> Deployment, through
the official client. Pods of this node are listed on demand (rate-limited) rather than
fetched one by one: the API has no get-by-UID, and a node list is one request.

The one owner of that rule: the eBPF sensor asks by cgroup id (`resolve`, through the cgroup
index), the kernel-log collector (`sensor.seccomplog`) by the path a process's /proc/<pid>/cgroup
names (`resolve_path`); both get the same Identity."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sensor.attribution.base import Identity
from sensor.attribution.cgroupfs import CgroupIndex
from sensor.attribution.kubepath import parse_cgroup_path

log = logging.getLogger(__name__)

_KUBEPODS_NAMES = {"kubepods", "kubepods.slice", "kubelet-kubepods.slice"}


def find_kubepods_roots(root: Path, max_depth: int = 3) -> list[Path]:
    """Top kubepods cgroups under a cgroup v2 mount (nested setups such as kind included)."""
    found: list[Path] = []
    frontier = [(root, 0)]
    while frontier:
        directory, depth = frontier.pop()
        try:
            children = [Path(e.path) for e in os.scandir(directory) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for child in children:
            if child.name in _KUBEPODS_NAMES:
                found.append(child)
            elif depth + 1 < max_depth:
                frontier.append((child, depth + 1))
    return sorted(found)


def _controller(owner_references: list[Any] | None) -> Any | None:
    for ref in owner_references or []:
        if ref.controller:
            return ref
    return None


class KubernetesResolver:
    def __init__(
        self,
        core: Any,
        apps: Any,
        index: CgroupIndex | None,
        node_name: str | None = None,
        relist_interval_s: float = 2.0,
        request_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.core = core  # kubernetes.client.CoreV1Api
        self.apps = apps  # kubernetes.client.AppsV1Api
        self.index = index  # None: asked by cgroup path only (the kernel-log collector)
        self.node_name = node_name
        self.relist_interval_s = relist_interval_s
        self.request_timeout_s = request_timeout_s
        self._clock = clock
        self._pods: dict[str, Any] = {}
        self._listed_at = float("-inf")
        self._replicasets: dict[tuple[str, str], str | None] = {}
        self.api_errors = 0

    # ------------------------------------------------------------------ lookups
    def _relist(self) -> None:
        self._listed_at = self._clock()
        kwargs: dict[str, Any] = {"_request_timeout": self.request_timeout_s}
        if self.node_name:
            kwargs["field_selector"] = f"spec.nodeName={self.node_name}"
        try:
            pods = self.core.list_pod_for_all_namespaces(**kwargs)
        except Exception as exc:  # ApiException, urllib3 errors: keep the old cache
            self.api_errors += 1
            log.warning("listing pods failed: %s", exc)
            return
        self._pods = {p.metadata.uid: p for p in pods.items if p.metadata and p.metadata.uid}

    def pod(self, uid: str) -> Any | None:
        pod = self._pods.get(uid)
        if pod is None and self._clock() - self._listed_at >= self.relist_interval_s:
            self._relist()
            pod = self._pods.get(uid)
        return pod

    def _replicaset_deployment(self, namespace: str, name: str) -> str | None:
        key = (namespace, name)
        if key in self._replicasets:
            return self._replicasets[key]
        try:
            rs = self.apps.read_namespaced_replica_set(name, namespace, _request_timeout=self.request_timeout_s)
        except Exception as exc:
            self.api_errors += 1
            log.warning("reading ReplicaSet %s/%s failed: %s", namespace, name, exc)
            return None  # not cached: retried on the next pod resolution
        owner = _controller(rs.metadata.owner_references)
        deployment = f"{namespace}/{owner.name}" if owner is not None and owner.kind == "Deployment" else None
        self._replicasets[key] = deployment
        return deployment

    def deployment_of(self, pod: Any) -> str | None:
        owner = _controller(pod.metadata.owner_references)
        if owner is None or owner.kind != "ReplicaSet":
            return None  # bare pods, StatefulSets, DaemonSets, Jobs: not a Deployment
        return self._replicaset_deployment(pod.metadata.namespace, owner.name)

    # ------------------------------------------------------------------ Resolver
    def resolve(self, cgroup_id: int) -> Identity | None:
        path = self.index.path_of(cgroup_id) if self.index is not None else None
        if path is None:
            return None
        return self.resolve_path(path)

    def resolve_path(self, path: str) -> Identity | None:
        """Identity of the workload in the cgroup at `path` (a kubepods path, either driver), or
        None if it is not a pod's container; partial (no pod) while the pod is not listed."""
        ref = parse_cgroup_path(path)
        if ref is None or ref.monitor:
            return None
        pod = self.pod(ref.pod_uid)
        if pod is None:
            # Partial: ingest can still join on pod UID and container id.
            return Identity(pod_uid=ref.pod_uid, container_id=ref.container_id)
        return Identity(
            namespace=pod.metadata.namespace,
            pod=pod.metadata.name,
            pod_uid=ref.pod_uid,
            container_id=ref.container_id,
            deployment=self.deployment_of(pod),
            service_account=pod.spec.service_account_name or "default",
        )

    def watch_paths(self) -> list[Path]:
        return find_kubepods_roots(self.index.root) if self.index is not None else []


def from_environment(index: CgroupIndex | None, node_name: str | None) -> KubernetesResolver:
    """Build the resolver from the in-cluster service account, else from ~/.kube/config."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return KubernetesResolver(client.CoreV1Api(), client.AppsV1Api(), index, node_name)
