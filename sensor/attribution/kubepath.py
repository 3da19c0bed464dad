"""Parse the cgroup paths kubelet and the container runtimes create. Pure.

Shapes covered (cgroup v1 controller paths and cgroup v2 paths look the same):

systemd driver   /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/
                     cri-containerd-<id>.scope
                 /kubepods.slice/kubepods-pod<uid_>.slice/crio-<id>.scope            (Guaranteed QoS)
                 .../kubepods-besteffort-pod<uid_>.slice/crio-conmon-<id>.scope     (CRI-O monitor)
cgroupfs driver  /kubepods/burstable/pod<uid>/<id>                                 (containerd, docker)
                 /kubepods/besteffort/pod<uid>/crio-<id>                           (CRI-O)
nested (kind)    /kubelet.slice/kubelet-kubepods.slice/.../kubelet-kubepods-besteffort-pod<uid_>.slice/
                     cri-containerd-<id>.scope
                 /docker/<node-id>/kubepods/burstable/pod<uid>/<id>

The systemd driver spells the pod UID with '_' for '-' (systemd unit names reserve '-').
Anything below the container segment (a workload's own sub-cgroups) belongs to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_UID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}"
_POD_SEGMENT = re.compile(rf"(?:^|-)pod({_UID})(?:\.slice)?$")
_SYSTEMD_CONTAINER = re.compile(r"^(cri-containerd|crio|docker|cri-o)-([0-9a-f]{64})\.scope$")
_CGROUPFS_CONTAINER = re.compile(r"^(crio-)?([0-9a-f]{64})$")
_MONITOR = re.compile(r"^crio-conmon-([0-9a-f]{64})(?:\.scope)?$")

Runtime = Literal["containerd", "cri-o", "docker"]
_RUNTIMES: dict[str, Runtime] = {
    "cri-containerd": "containerd",
    "crio": "cri-o",
    "cri-o": "cri-o",
    "docker": "docker",
}


@dataclass(frozen=True)
class ContainerRef:
    pod_uid: str
    container_id: str | None  # None: the pod-level cgroup itself
    runtime: Runtime | None  # None when the path does not say (cgroupfs driver, bare id)
    qos: Literal["guaranteed", "burstable", "besteffort"]
    monitor: bool = False  # a runtime helper (CRI-O conmon) in the pod's cgroup, not a container


def parse_cgroup_path(path: str) -> ContainerRef | None:
    """Pod and container a kubepods cgroup path belongs to, or None if it is not one."""
    segments = [s for s in path.strip().split("/") if s]
    if not any("kubepods" in s for s in segments):
        return None
    for index, segment in enumerate(segments):
        match = _POD_SEGMENT.search(segment)
        if not match:
            continue
        pod_uid = match.group(1).replace("_", "-")
        before = " ".join(segments[: index + 1])
        qos: Literal["guaranteed", "burstable", "besteffort"] = (
            "burstable" if "burstable" in before else "besteffort" if "besteffort" in before else "guaranteed"
        )
        if index + 1 == len(segments):
            return ContainerRef(pod_uid, None, None, qos)
        child = segments[index + 1]
        monitor = _MONITOR.match(child)
        if monitor:
            return ContainerRef(pod_uid, monitor.group(1), "cri-o", qos, monitor=True)
        systemd = _SYSTEMD_CONTAINER.match(child)
        if systemd:
            return ContainerRef(pod_uid, systemd.group(2), _RUNTIMES[systemd.group(1)], qos)
        plain = _CGROUPFS_CONTAINER.match(child)
        if plain:
            return ContainerRef(pod_uid, plain.group(2), "cri-o" if plain.group(1) else None, qos)
        return ContainerRef(pod_uid, None, None, qos)
    return None


def kubepods_path(text: str) -> str | None:
    """The kubepods cgroup path of a /proc/<pid>/cgroup file (v1 'N:controller:/path' lines or
    v2 '0::/path'; the v2 line first), or None if the process is in no pod's cgroup."""
    lines = [parts for parts in (line.split(":", 2) for line in text.splitlines()) if len(parts) == 3]
    v2_first = [parts for parts in lines if parts[0] == "0"] + [parts for parts in lines if parts[0] != "0"]
    for _, _, path in v2_first:
        if parse_cgroup_path(path) is not None:
            return path
    return None


def parse_proc_cgroup(text: str) -> ContainerRef | None:
    """Container of a /proc/<pid>/cgroup file."""
    path = kubepods_path(text)
    return parse_cgroup_path(path) if path is not None else None
