"""The Kubernetes resolver against recorded API objects, through the real kubernetes client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from sensor_fake_apiserver import FakeApiServer, load_pods

from sensor.attribution.base import CachingResolver
from sensor.attribution.cgroupfs import CgroupIndex
from sensor.attribution.kubernetes import KubernetesResolver, find_kubepods_roots

PODS = {p["metadata"]["name"]: p for p in load_pods()["items"]}


def _uid(name: str) -> str:
    return str(PODS[name]["metadata"]["uid"])


def _cid(name: str) -> str:
    return str(PODS[name]["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer().running() as server:
        yield server


@pytest.fixture
def cgroups(tmp_path: Path) -> dict[str, Path]:
    """A node's cgroup tree as kubelet lays it out, with both drivers and runtimes."""
    root = tmp_path / "cgroup"
    u = {n: _uid(n).replace("-", "_") for n in PODS}
    dirs = {
        "researcher": f"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u['researcher-6f7b9c8d4-k2x9z']}"
        f".slice/cri-containerd-{_cid('researcher-6f7b9c8d4-k2x9z')}.scope",
        "retriever": f"kubepods.slice/kubepods-pod{u['retriever-5c4b3a2d1-p7q8r']}.slice/"
        f"crio-{_cid('retriever-5c4b3a2d1-p7q8r')}.scope",
        "vectordb": f"kubepods/besteffort/pod{_uid('vectordb-0')}/{_cid('vectordb-0')}",
        "debug": f"kubepods/besteffort/pod{_uid('debug-shell')}/{_cid('debug-shell')}",
        "unknown": "kubepods/burstable/pod0f0f0f0f-1111-4222-8333-444444444444/" + "77" * 32,
        "system": "system.slice/containerd.service",
    }
    out = {"root": root}
    for key, rel in dirs.items():
        (root / rel).mkdir(parents=True)
        out[key] = root / rel
    return out


def make_resolver(api: FakeApiServer, root: Path, clock: Clock | None = None) -> KubernetesResolver:
    config = client.Configuration()
    config.host = api.url
    api_client = client.ApiClient(config)
    return KubernetesResolver(
        client.CoreV1Api(api_client),
        client.AppsV1Api(api_client),
        CgroupIndex(root),
        node_name="node-a",
        clock=clock or Clock(),
    )


def ino(path: Path) -> int:
    return os.stat(path).st_ino


def test_containerd_pod_resolves_through_replicaset_to_deployment(api: FakeApiServer, cgroups: dict[str, Path]) -> None:
    identity = make_resolver(api, cgroups["root"]).resolve(ino(cgroups["researcher"]))
    assert identity is not None
    assert identity.namespace == "agents"
    assert identity.pod == "researcher-6f7b9c8d4-k2x9z"
    assert identity.pod_uid == _uid("researcher-6f7b9c8d4-k2x9z")
    assert identity.container_id == _cid("researcher-6f7b9c8d4-k2x9z")
    assert identity.deployment == "agents/researcher"
    assert identity.service_account == "researcher"
    assert "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a" in api.requests
    assert "/apis/apps/v1/namespaces/agents/replicasets/researcher-6f7b9c8d4" in api.requests


def test_crio_guaranteed_pod(api: FakeApiServer, cgroups: dict[str, Path]) -> None:
    identity = make_resolver(api, cgroups["root"]).resolve(ino(cgroups["retriever"]))
    assert identity is not None
    assert (identity.deployment, identity.service_account, identity.container_id) == (
        "rag/retriever",
        "retriever",
        _cid("retriever-5c4b3a2d1-p7q8r"),
    )


def test_pods_not_owned_by_a_deployment_have_no_deployment(api: FakeApiServer, cgroups: dict[str, Path]) -> None:
    resolver = make_resolver(api, cgroups["root"])
    statefulset = resolver.resolve(ino(cgroups["vectordb"]))
    bare = resolver.resolve(ino(cgroups["debug"]))
    assert statefulset is not None and statefulset.pod == "vectordb-0" and statefulset.deployment is None
    assert bare is not None and bare.pod == "debug-shell" and bare.deployment is None
    assert bare.service_account == "default"


def test_non_pod_cgroups_are_not_resolved(api: FakeApiServer, cgroups: dict[str, Path]) -> None:
    resolver = make_resolver(api, cgroups["root"])
    assert resolver.resolve(ino(cgroups["system"])) is None
    assert resolver.resolve(123456789) is None


def test_unknown_pod_gives_partial_identity_and_relists_at_a_bounded_rate(
    api: FakeApiServer, cgroups: dict[str, Path]
) -> None:
    clock = Clock()
    resolver = make_resolver(api, cgroups["root"], clock)
    for _ in range(5):
        identity = resolver.resolve(ino(cgroups["unknown"]))
        assert identity is not None and identity.pod is None
        assert identity.pod_uid == "0f0f0f0f-1111-4222-8333-444444444444" and identity.deployment is None
    lists = [r for r in api.requests if r.startswith("/api/v1/pods")]
    assert len(lists) == 1
    clock.now += 5
    resolver.resolve(ino(cgroups["unknown"]))
    assert len([r for r in api.requests if r.startswith("/api/v1/pods")]) == 2


def test_pods_of_other_nodes_are_not_listed(api: FakeApiServer, cgroups: dict[str, Path]) -> None:
    resolver = make_resolver(api, cgroups["root"])
    assert resolver.pod(_uid("researcher-6f7b9c8d4-zz8wq")) is None  # runs on node-b


def test_replicaset_lookups_are_cached_and_missing_ones_tolerated(api: FakeApiServer, cgroups: dict[str, Path]) -> None:
    resolver = make_resolver(api, cgroups["root"])
    resolver.resolve(ino(cgroups["researcher"]))
    resolver.resolve(ino(cgroups["researcher"]))
    assert len([r for r in api.requests if "/replicasets/" in r]) == 1
    api.replicasets.clear()
    resolver._replicasets.clear()
    identity = resolver.resolve(ino(cgroups["retriever"]))
    assert identity is not None and identity.pod == "retriever-5c4b3a2d1-p7q8r" and identity.deployment is None
    assert resolver.api_errors == 1


def test_api_outage_keeps_resolving_what_is_cached(cgroups: dict[str, Path]) -> None:
    clock = Clock()
    with FakeApiServer().running() as api:
        resolver = make_resolver(api, cgroups["root"], clock)
        cached = CachingResolver(resolver, clock=clock)
        before = cached.resolve(ino(cgroups["researcher"]))
    clock.now += 60  # the server is gone now
    assert cached.resolve(ino(cgroups["researcher"])) == before
    assert resolver.resolve(ino(cgroups["unknown"])) is not None  # partial, no crash
    assert resolver.api_errors >= 1


def test_kubepods_roots_are_found_for_both_drivers_and_nested_setups(tmp_path: Path) -> None:
    for rel in ("kubepods.slice/x", "kubepods/burstable", "kubelet.slice/kubelet-kubepods.slice/y", "system.slice"):
        (tmp_path / rel).mkdir(parents=True)
    assert find_kubepods_roots(tmp_path) == sorted(
        [
            tmp_path / "kubepods.slice",
            tmp_path / "kubepods",
            tmp_path / "kubelet.slice" / "kubelet-kubepods.slice",
        ]
    )


def test_a_cgroup_path_resolves_without_an_index(api: FakeApiServer, cgroups: dict[str, Path]) -> None:
    """The kernel-log collector asks by the path /proc/<pid>/cgroup names (no cgroup index):
    the same identity as by cgroup id; asked by id, a resolver without an index knows nothing."""
    by_id = make_resolver(api, cgroups["root"]).resolve(ino(cgroups["researcher"]))
    config = client.Configuration()
    config.host = api.url
    api_client = client.ApiClient(config)
    pathless = KubernetesResolver(client.CoreV1Api(api_client), client.AppsV1Api(api_client), None, node_name="node-a")
    path = "/" + str(cgroups["researcher"].relative_to(cgroups["root"]))
    assert by_id is not None and pathless.resolve_path(path) == by_id
    assert pathless.resolve_path("/system.slice/containerd.service") is None
    assert pathless.resolve(ino(cgroups["researcher"])) is None and pathless.watch_paths() == []
