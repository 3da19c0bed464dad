"""The kernel-log collector on a Kubernetes node: a real process under a real seccomp SCMP_ACT_LOG
filter, placed (before its first instruction) in a cgroup v2 laid out as kubelet lays out a pod's
container (systemd driver with containerd, cgroupfs driver with CRI-O), makes the logged syscall;
the collector reads the kernel's audit record from /dev/kmsg, resolves pid -> /proc/<pid>/cgroup ->
pod -> ReplicaSet -> Deployment through the sensor's Kubernetes resolver (the real `kubernetes`
client against a server replaying recorded pod and ReplicaSet payloads) and publishes AuditEvidence
naming the Deployment and the pod on the real broker. Records of a pod nobody lists, or of a pod no
Deployment owns, are counted by reason and never published."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client

from runward.core.contracts import AuditEvidence
from runward.core.topics import AUDIT_EVIDENCE
from sensor.attribution.cgroupfs import cgroup2_root
from sensor.attribution.kubernetes import KubernetesResolver
from sensor.seccomplog.collector import (
    KMSG,
    NO_DEPLOYMENT,
    POD_UNKNOWN,
    Collector,
    boot_id,
    join_host_cgroup_namespace,
    read_kmsg,
    run,
)
from sensor.seccomplog.parse import seccomp_record
from tests.kafka_reading import read_records
from tests.sensor.sensor_fake_apiserver import FakeApiServer, load_pods

HELPER = Path(__file__).with_name("log_syscall.py")
PERSONALITY = 135  # personality(0): harmless, and nothing else in the helper calls it
PODS = {p["metadata"]["name"]: p for p in load_pods()["items"]}
ROOT = cgroup2_root()

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.access(KMSG, os.R_OK) or ROOT is None,
    reason="needs root, /dev/kmsg and a cgroup v2 mount",
)


def uid(pod: str) -> str:
    return str(PODS[pod]["metadata"]["uid"])


def container_id(pod: str) -> str:
    return str(PODS[pod]["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1])


def systemd_containerd(pod: str) -> str:
    """kubelet's systemd driver, BestEffort QoS, containerd."""
    pod_unit = uid(pod).replace("-", "_")
    return (
        f"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{pod_unit}.slice/"
        f"cri-containerd-{container_id(pod)}.scope"
    )


def cgroupfs_crio(pod: str) -> str:
    """kubelet's cgroupfs driver, Burstable QoS, CRI-O."""
    return f"kubepods/burstable/pod{uid(pod)}/crio-{container_id(pod)}"


@contextmanager
def kubepods_cgroup(relative: str) -> Iterator[Path]:
    """The cgroup v2 directory (and its missing ancestors), removed afterwards."""
    assert ROOT is not None
    created: list[Path] = []
    path = ROOT
    for part in relative.split("/"):
        path = path / part
        if not path.exists():
            path.mkdir()
            created.append(path)
    try:
        yield path
    finally:
        for directory in reversed(created):
            for _ in range(100):  # EBUSY while the last task exits
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def join(cgroup: Path) -> Callable[[], None]:
    procs = str(cgroup / "cgroup.procs")

    def move_self() -> None:  # in the child, before exec: the filter and the syscall come after
        fd = os.open(procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    return move_self


@contextmanager
def logged_syscall_in(cgroup: Path, seconds: float = 30.0) -> Iterator[subprocess.Popen[bytes]]:
    """A real process in `cgroup` that makes personality(2) under SCMP_ACT_LOG every 0.25 s (the
    kernel's printk rate limit may drop a line when neighbours flood it), stopped on leaving."""
    process = subprocess.Popen(
        [sys.executable, str(HELPER), str(PERSONALITY), str(seconds), "0.25"],
        preexec_fn=join(cgroup),  # noqa: PLW1509 - only raw syscalls in the child
        stdout=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def resolver(api: FakeApiServer) -> KubernetesResolver:
    config = client.Configuration()
    config.host = api.url
    api_client = client.ApiClient(config)
    return KubernetesResolver(client.CoreV1Api(api_client), client.AppsV1Api(api_client), None, node_name="node-a")


@pytest.mark.parametrize(
    ("pod", "deployment", "layout"),
    [
        ("researcher-6f7b9c8d4-k2x9z", "agents/researcher", systemd_containerd),
        ("retriever-5c4b3a2d1-p7q8r", "rag/retriever", cgroupfs_crio),
    ],
    ids=["systemd-containerd", "cgroupfs-crio"],
)
def test_seccomp_log_of_a_kubernetes_pod_is_published_as_its_deployments_evidence(
    kafka_bootstrap: str, pod: str, deployment: str, layout: Callable[[str], str]
) -> None:
    stop = threading.Event()
    with FakeApiServer().running() as api, kubepods_cgroup(layout(pod)) as cgroup:
        collector = threading.Thread(
            target=run,
            args=(kafka_bootstrap, KMSG, False, 60.0, stop.is_set, resolver(api)),
            daemon=True,
        )
        collector.start()
        time.sleep(1.0)  # the collector reads from the log's end: let it get there first
        try:
            with logged_syscall_in(cgroup) as process:
                records = read_records(
                    kafka_bootstrap,
                    AUDIT_EVIDENCE.name,
                    lambda v: v.get("deployment") == deployment and v.get("detail", {}).get("pid") == process.pid,
                    1,
                    timeout=30,
                )
        finally:
            stop.set()
            collector.join(timeout=15)
        requests = list(api.requests)
    assert records, "no evidence published (is the kernel rate-limiting audit printk? see dmesg)"
    key, value = records[0]
    evidence = AuditEvidence.model_validate(value)
    assert key == deployment
    assert (evidence.source.value, evidence.action, evidence.pod) == ("seccomp", "personality", pod)
    assert evidence.detail["seccomp_action"] == "log" and evidence.detail["syscall_nr"] == PERSONALITY
    assert (evidence.detail["pod_uid"], evidence.detail["container_id"]) == (uid(pod), container_id(pod))
    # This node's pods only, and the ReplicaSet that owns the pod: what the DaemonSet's RBAC allows.
    assert "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a" in requests
    replicaset = PODS[pod]["metadata"]["ownerReferences"][0]["name"]
    assert f"/apis/apps/v1/namespaces/{deployment.split('/')[0]}/replicasets/{replicaset}" in requests


def test_records_of_unresolvable_pods_are_counted_and_never_published() -> None:
    """A pod this node's list does not hold (deleted, or not yet listed) and a StatefulSet's pod
    (no Deployment): their real records are read, counted by reason, and yield no evidence."""
    unknown = "kubepods/besteffort/pod0f0f0f0f-1111-4222-8333-444444444444/" + "77" * 32
    stop = threading.Event()
    outcomes: dict[int, tuple[AuditEvidence | None, Counter[str]]] = {}
    ours: set[int] = set()
    with (
        FakeApiServer().running() as api,
        kubepods_cgroup(unknown) as unknown_cgroup,
        kubepods_cgroup(systemd_containerd("vectordb-0")) as statefulset_cgroup,
    ):
        collector = Collector(boot_id(), pods=resolver(api))

        def read() -> None:
            for record in read_kmsg(KMSG, False, stop.is_set):
                seccomp = seccomp_record(record.message)
                before = collector.unattributed_by.copy()
                evidence = collector.evidence(record)
                if seccomp is not None and seccomp.pid in ours:
                    outcomes.setdefault(seccomp.pid, (evidence, collector.unattributed_by - before))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(1.0)
        try:
            with logged_syscall_in(unknown_cgroup) as unknown_process, logged_syscall_in(statefulset_cgroup) as other:
                processes = [unknown_process, other]
                ours.update(p.pid for p in processes)
                deadline = time.monotonic() + 30
                while len(outcomes) < 2 and time.monotonic() < deadline:
                    time.sleep(0.1)
        finally:
            stop.set()
            reader.join(timeout=15)
    assert set(outcomes) == ours, "a record was not read (is the kernel rate-limiting audit printk?)"
    unknown_pid, statefulset_pid = (p.pid for p in processes)
    assert outcomes[unknown_pid] == (None, Counter({POD_UNKNOWN: 1}))
    assert outcomes[statefulset_pid] == (None, Counter({NO_DEPLOYMENT: 1}))
    assert collector.unattributed >= 2


def test_in_its_own_cgroup_namespace_the_collector_joins_the_hosts_to_read_pod_paths() -> None:
    """In a pod, the collector has its own cgroup namespace, where another pod's cgroup is printed
    relative to its own (`/../..`, the cgroupfs driver's `kubepods` lost). A real process in a
    cgroupfs-layout pod cgroup, read from a child in a new cgroup namespace rooted elsewhere:
    relative before joining the host's namespace, whole after. (The test's own process stands
    for the host's pid 1, which this sandbox does not let a root process inspect.)"""
    pod = "retriever-5c4b3a2d1-p7q8r"
    target_path = cgroupfs_crio(pod)
    script = """
import ctypes, sys
from pathlib import Path
from sensor.seccomplog.collector import CLONE_NEWCGROUP, join_host_cgroup_namespace
assert ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWCGROUP) == 0, "unshare(CLONE_NEWCGROUP)"
cgroup = Path(f"/proc/{sys.argv[1]}/cgroup")
print(cgroup.read_text().splitlines()[-1])
print(join_host_cgroup_namespace(int(sys.argv[2])))
print(cgroup.read_text().splitlines()[-1])
"""
    with (
        kubepods_cgroup("runward-test-collector-ns") as own,
        kubepods_cgroup(target_path) as target_cgroup,
    ):
        target = subprocess.Popen(["sleep", "5"], preexec_fn=join(target_cgroup))  # noqa: PLW1509
        try:
            reader = subprocess.run(
                [sys.executable, "-c", script, str(target.pid), str(os.getpid())],
                preexec_fn=join(own),  # noqa: PLW1509
                capture_output=True,
                text=True,
                timeout=30,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
            )
        finally:
            target.kill()
            target.wait()
    assert reader.returncode == 0, reader.stderr
    before, joined, after = reader.stdout.splitlines()
    assert before == f"0::/../{target_path}"
    assert joined == "True"
    assert after == f"0::/{target_path}"
    assert join_host_cgroup_namespace(os.getpid())  # already in that namespace: nothing to do


def test_the_collector_command_attributes_pods_and_logs_what_it_could_not(kafka_bootstrap: str, tmp_path: Path) -> None:
    """`python -m sensor.seccomplog --kubernetes` as the DaemonSet runs it (the node from
    NODE_NAME; the API server from a kubeconfig here, the in-cluster account there): a pod's
    record is published as its Deployment's; SIGTERM flushes and logs the counts."""
    pod, deployment = "researcher-6f7b9c8d4-k2x9z", "agents/researcher"
    with FakeApiServer().running() as api, kubepods_cgroup(systemd_containerd(pod)) as cgroup:
        env = {
            **os.environ,
            "PYTHONPATH": str(Path(__file__).parents[2]),
            "KUBECONFIG": str(api.kubeconfig(tmp_path / "kubeconfig")),
            "NODE_NAME": "node-a",
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        collector = subprocess.Popen(
            [sys.executable, "-m", "sensor.seccomplog", "--kubernetes", "--kafka", kafka_bootstrap],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(3.0)  # imports, then the collector seeks to the log's end
            with logged_syscall_in(cgroup) as process:
                records = read_records(
                    kafka_bootstrap,
                    AUDIT_EVIDENCE.name,
                    lambda v: v.get("detail", {}).get("pid") == process.pid,
                    1,
                    timeout=30,
                )
        finally:
            collector.terminate()
            _, stderr = collector.communicate(timeout=30)
    assert collector.returncode == 0, stderr
    assert records, f"no evidence published; collector log:\n{stderr}"
    key, value = records[0]
    evidence = AuditEvidence.model_validate(value)
    assert (key, evidence.deployment, evidence.pod) == (deployment, deployment, pod)
    assert "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a" in api.requests
    assert f"{deployment} {pod} seccomp personality" in stderr
    assert re.search(r"published [1-9][0-9]*, unattributed [0-9]+", stderr), stderr
