"""Run a workload locally the way a Deployment would run it: N replicas, each in its own
cgroup v2 (its 'pod'), registered so the sensor attributes everything it does.

    /sys/fs/cgroup/unified/runward/<namespace>_<name>/<pod-name>/
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from runward.core.contracts.common import deployment_id
from sensor.attribution.cgroupfs import cgroup2_root, cgroup_id
from sensor.attribution.local import LOCAL_CGROUP_DIR, Registry, WorkloadEntry, registry_path

# Kubernetes' pod-name suffix alphabet (no vowels, no look-alike digits).
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class WorkloadError(RuntimeError):
    pass


def _encode(digest: bytes, length: int) -> str:
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:length])


def template_hash(deployment: str, service_account: str, cmd: Sequence[str]) -> str:
    """Stable per pod template, like pod-template-hash: same command, same ReplicaSet."""
    digest = hashlib.sha256("\0".join([deployment, service_account, *cmd]).encode()).digest()
    return _encode(digest, 10)


def pod_name(name: str, template: str) -> str:
    return f"{name[:46]}-{template}-{_encode(secrets.token_bytes(5), 5)}"


def _join_cgroup(procs: str) -> Callable[[], None]:
    def join() -> None:
        # Runs in the child between fork and exec: only raw syscalls, no locks.
        fd = os.open(procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")  # "0" moves the writing process
        finally:
            os.close(fd)

    return join


@dataclass
class Replica:
    pod: str
    pod_uid: str
    cgroup: Path
    cgroup_id: int
    process: subprocess.Popen[bytes]


def _remove_cgroup(path: Path, timeout_s: float = 3.0) -> None:
    """Kill whatever is left in the cgroup (daemonised grandchildren) and remove it."""
    kill = path / "cgroup.kill"
    deadline = time.monotonic() + timeout_s
    while path.exists():
        try:
            if not (path / "cgroup.procs").read_text().strip():
                path.rmdir()
                return
            if kill.exists():
                kill.write_text("1")
            else:  # kernels before 5.14 have no cgroup.kill
                for pid in (path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), 9)
        except FileNotFoundError:
            return
        except OSError:
            pass  # EBUSY while the last task exits
        if time.monotonic() > deadline:
            raise WorkloadError(f"could not empty and remove cgroup {path}")
        time.sleep(0.02)


class Workload:
    def __init__(self, deployment: str, service_account: str, registry: Registry) -> None:
        self.deployment = deployment
        self.service_account = service_account
        self.registry = registry
        self.replicas: list[Replica] = []
        self._closed = False

    def wait(self, timeout: float | None = None) -> list[int]:
        deadline = None if timeout is None else time.monotonic() + timeout
        codes = []
        for replica in self.replicas:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            codes.append(replica.process.wait(left))
        return codes

    def send_signal(self, sig: int) -> None:
        for replica in self.replicas:
            if replica.process.poll() is None:
                replica.process.send_signal(sig)

    def close(self, grace_s: float = 3.0) -> None:
        """Stop what still runs, remove the cgroups, mark the registry entries ended."""
        if self._closed:
            return
        self._closed = True
        for replica in self.replicas:
            if replica.process.poll() is None:
                replica.process.terminate()
        errors = []
        for replica in self.replicas:
            try:
                replica.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()
            try:
                _remove_cgroup(replica.cgroup)
            except WorkloadError as exc:
                errors.append(str(exc))
            self.registry.mark_ended(replica.cgroup_id)
        for replica in self.replicas[:1]:
            with contextlib.suppress(OSError):
                replica.cgroup.parent.rmdir()  # the Deployment directory, if no other run uses it
        if errors:
            raise WorkloadError("; ".join(errors))

    def __enter__(self) -> Workload:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def run_workload(
    deployment: str,
    service_account: str,
    replicas: int,
    cmd: list[str],
    *,
    home: Path | None = None,
    cgroup_root: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
) -> Workload:
    """Start `replicas` copies of cmd, each in its own cgroup, attributed to `deployment`
    ('namespace/name') and `service_account`. Returns at once; the caller waits and closes
    (or uses the Workload as a context manager)."""
    namespace, _, name = deployment.partition("/")
    deployment = deployment_id(namespace, name)
    if not _DNS_LABEL.match(namespace) or not _DNS_LABEL.match(name):
        raise WorkloadError(f"deployment {deployment!r}: namespace and name must be DNS-1123 labels")
    if not _DNS_LABEL.match(service_account):
        raise WorkloadError(f"service account {service_account!r} must be a DNS-1123 label")
    if replicas < 1:
        raise WorkloadError("replicas must be at least 1")
    if not cmd:
        raise WorkloadError("no command to run")
    root = cgroup_root or cgroup2_root()
    if root is None:
        raise WorkloadError("no cgroup v2 hierarchy is mounted (/sys/fs/cgroup/unified or /sys/fs/cgroup)")
    registry = Registry(registry_path(home))
    workload = Workload(deployment, service_account, registry)
    template = template_hash(deployment, service_account, cmd)
    parent = root / LOCAL_CGROUP_DIR / f"{namespace}_{name}"
    try:
        for _ in range(replicas):
            pod = pod_name(name, template)
            cgroup = parent / pod
            try:
                cgroup.mkdir(parents=True)
            except PermissionError:
                raise WorkloadError(f"cannot create cgroup {cgroup}: runward run needs root") from None
            entry = WorkloadEntry(
                cgroup_id=cgroup_id(cgroup),
                cgroup_path=str(cgroup),
                namespace=namespace,
                deployment=deployment,
                pod=pod,
                pod_uid=str(uuid.uuid4()),
                service_account=service_account,
                started_at=time.time(),
            )
            registry.add(entry)
            try:
                process = subprocess.Popen(
                    cmd,
                    preexec_fn=_join_cgroup(str(cgroup / "cgroup.procs")),
                    env=env,
                    cwd=cwd,
                    stdout=stdout,
                    stderr=stderr,
                )
            except BaseException:
                cgroup.rmdir()
                registry.mark_ended(entry.cgroup_id)
                raise
            registry.update(entry.cgroup_id, pid=process.pid)
            workload.replicas.append(Replica(pod, entry.pod_uid, cgroup, entry.cgroup_id, process))
    except BaseException:
        workload.close()
        with contextlib.suppress(OSError):
            parent.rmdir()
        raise
    return workload
