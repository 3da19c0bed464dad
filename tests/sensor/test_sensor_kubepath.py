"""kubepods cgroup path shapes: containerd and CRI-O, systemd and cgroupfs drivers, v1 and v2."""

from __future__ import annotations

import pytest

from sensor.attribution.kubepath import (
    ContainerRef,
    kubepods_path,
    parse_cgroup_path,
    parse_proc_cgroup,
)

UID = "8e0f6b4a-2c1d-4f5e-9a3b-7c6d5e4f3a21"
UID_ = UID.replace("-", "_")
CID = "4f1e2d3c5b6a79880f1e2d3c4b5a69788f9e0d1c2b3a49586f7e8d9c0b1a2f3e"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # cgroup v2 (or v1 controller path), systemd driver, containerd, Burstable
        (
            f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{CID}.scope",
            ContainerRef(UID, CID, "containerd", "burstable"),
        ),
        # systemd driver, CRI-O, Guaranteed (no QoS slice)
        (f"/kubepods.slice/kubepods-pod{UID_}.slice/crio-{CID}.scope", ContainerRef(UID, CID, "cri-o", "guaranteed")),
        # systemd driver, BestEffort, docker via cri-dockerd
        (
            f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/docker-{CID}.scope",
            ContainerRef(UID, CID, "docker", "besteffort"),
        ),
        # cgroupfs driver, containerd (bare id)
        (f"/kubepods/burstable/pod{UID}/{CID}", ContainerRef(UID, CID, None, "burstable")),
        # cgroupfs driver, Guaranteed
        (f"/kubepods/pod{UID}/{CID}", ContainerRef(UID, CID, None, "guaranteed")),
        # cgroupfs driver, CRI-O
        (f"/kubepods/besteffort/pod{UID}/crio-{CID}", ContainerRef(UID, CID, "cri-o", "besteffort")),
        # CRI-O's conmon monitor sits in the pod cgroup: not the container
        (
            f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-conmon-{CID}.scope",
            ContainerRef(UID, CID, "cri-o", "burstable", monitor=True),
        ),
        # a workload's own sub-cgroup below its container still belongs to it
        (
            f"/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope/init.scope",
            ContainerRef(UID, CID, "containerd", "guaranteed"),
        ),
        # the pod-level cgroup itself
        (f"/kubepods/burstable/pod{UID}", ContainerRef(UID, None, None, "burstable")),
        # kind: kubelet nested under its own slice, systemd driver
        (
            "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
            f"kubelet-kubepods-besteffort-pod{UID_}.slice/cri-containerd-{CID}.scope",
            ContainerRef(UID, CID, "containerd", "besteffort"),
        ),
        # kind with cgroupfs: the node container's cgroup prefixes everything
        (f"/docker/{'ab' * 32}/kubepods/burstable/pod{UID}/{CID}", ContainerRef(UID, CID, None, "burstable")),
    ],
)
def test_kubepods_shapes(path: str, expected: ContainerRef) -> None:
    assert parse_cgroup_path(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/system.slice/containerd.service",
        "/user.slice/user-1000.slice/session-3.scope",
        "/runward/agents_researcher/researcher-abc-12345",
        f"/system.slice/pod{UID}",
        "/kubepods.slice",
        "/kubepods/burstable",
    ],
)
def test_non_pod_paths(path: str) -> None:
    assert parse_cgroup_path(path) is None


def test_proc_cgroup_v1_and_v2_files() -> None:
    v1 = "\n".join(
        [
            "12:pids:/kubepods/burstable/pod" + UID + "/" + CID,
            "11:memory:/kubepods/burstable/pod" + UID + "/" + CID,
            "1:name=systemd:/kubepods/burstable/pod" + UID + "/" + CID,
            "0::/",
        ]
    )
    v2 = f"0::/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope\n"
    for text in (v1, v2):
        ref = parse_proc_cgroup(text)
        assert ref is not None and (ref.pod_uid, ref.container_id) == (UID, CID)
    assert parse_proc_cgroup("0::/user.slice\n") is None


def test_kubepods_path_prefers_the_v2_line_and_reads_paths_relative_to_a_cgroup_namespace() -> None:
    """The kernel-log collector resolves a process by the path kubepods_path picks: the unified
    (v2) hierarchy's when it is a pod's, a v1 controller's otherwise; inside a pod's own cgroup
    namespace the systemd driver's path is printed relative to the reader (`/../..`)."""
    v2_path = f"/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope"
    other = "8e0f6b4a-2c1d-4f5e-9a3b-000000000000"
    hybrid = f"4:memory:/kubepods/burstable/pod{other}/{CID}\n0::{v2_path}\n"
    assert kubepods_path(hybrid) == v2_path
    v1_only = f"4:memory:/kubepods/burstable/pod{other}/{CID}\n0::/\n"
    assert kubepods_path(v1_only) == f"/kubepods/burstable/pod{other}/{CID}"
    relative = f"0::/../../kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-{CID}.scope\n"
    ref = parse_proc_cgroup(relative)
    assert ref is not None and (ref.pod_uid, ref.container_id, ref.runtime) == (UID, CID, "cri-o")
    assert kubepods_path("0::/user.slice/user-0.slice\n1:cpu:/\n") is None
    assert kubepods_path("garbage\n0:/kubepods\n") is None
