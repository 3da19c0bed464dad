"""`python -m sensor.seccomplog`: the kernel log's would-be violations as AuditEvidence.

Reads /dev/kmsg (from its end: what happened before the collector started is not its
evidence), turns seccomp audit records (type 1326) and the egress allowlist's nftables log lines
(prefix `runward-egress:<namespace>/<name>: `, see `sensor.seccomplog.parse`) into AuditEvidence,
attributes them to the agent and publishes them on runward.audit-evidence keyed by its
Deployment id. The enforcer stores them; the API lists them; the audit soak reads them.

Attribution: a seccomp record names a pid; its /proc/<pid>/cgroup places it either in the cgroup
v2 that `runward run` made for the replica (`/runward/<namespace>_<name>/<pod>`), or in a
Kubernetes pod's container cgroup (kubepods, systemd or cgroupfs driver, containerd / CRI-O /
docker), which the sensor's Kubernetes resolver (`sensor.attribution.kubernetes`, the one owner of
cgroup -> pod -> ReplicaSet -> Deployment) turns into the Deployment and the pod. A record whose
process is gone, whose pod is not listed (yet) or is no Deployment's, or that is not an agent's,
is counted by reason and dropped (never published as someone else's); the counts are logged.
An nftables line names the Deployment in its prefix.

In a pod, /proc/<pid>/cgroup is printed relative to the reader's cgroup namespace: the collector
joins the host's (pid 1's, with hostPID) when it can, so kubepods paths read whole.

Seccomp records come from the kernel's audit multicast group (netlink, AUDIT_NLGRP_READLOG) when
the collector may join it (root): every record, whether or not an audit daemon listens, and not
rate-limited. The kernel log is then read for the egress drops only (a seccomp record there is the
same record, printed). Without the multicast group, the kernel log gives both.

Limits, said plainly: the kernel prints audit records to its log only when no audit daemon
listens on the audit netlink socket, and rate-limits them ("kauditd_printk_skb: N callbacks
suppressed"); a flood loses records (the multicast group does not). A record is attributed by
the live process's cgroup: a process gone before the record is read is counted, not named.
The collector itself folds repeats of one action by one pod
within `repeat_s` into the next record's `repeats` count, so one noisy syscall is one record a
minute, not thousands.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import hashlib
import logging
import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runward.core.contracts import AuditEvidence, EvidenceSource, utcnow
from sensor.attribution.base import Identity
from sensor.attribution.kubepath import kubepods_path
from sensor.seccomplog.parse import (
    AUDIT_SECCOMP,
    MAX_RECORD,
    SECCOMP_PREFIX,
    EgressDrop,
    KernelRecord,
    SeccompRecord,
    deployment_of,
    egress_drop,
    kmsg_record,
    local_workload,
)
from sensor.seccomplog.parse import seccomp_record as parse_seccomp

log = logging.getLogger(__name__)
KMSG = Path("/dev/kmsg")
REPEAT_S = 60.0
SUMMARY_S = 60.0
_AUDIT_SERIAL = re.compile(r"audit\([0-9.]{1,40}:([0-9]{1,20})\)")
CLONE_NEWCGROUP = 0x02000000

# Why a seccomp record was not published (the keys of Collector.unattributed_by).
GONE = "process_gone"  # exited before its /proc/<pid>/cgroup was read
NOT_AN_AGENT = "not_an_agent"  # neither a `runward run` replica nor a pod's container
POD_UNKNOWN = "pod_unknown"  # a kubepods cgroup whose pod this node's list does not hold
NO_DEPLOYMENT = "no_deployment"  # a pod no Deployment owns (StatefulSet, Job, bare pod)


@dataclass(frozen=True)
class Attributed:
    """The agent a process belongs to: Deployment id and pod (and, for a pod, its UID and container)."""

    deployment: str
    pod: str
    pod_uid: str | None = None
    container_id: str | None = None


class PodResolver(Protocol):
    """cgroup path -> pod -> Deployment: `sensor.attribution.kubernetes.KubernetesResolver`."""

    def resolve_path(self, path: str) -> Identity | None: ...


def boot_id(path: Path = Path("/proc/sys/kernel/random/boot_id")) -> str:
    """kmsg sequence numbers restart at boot: the boot id makes evidence ids unique."""
    try:
        return path.read_text().strip()
    except OSError:
        return "unknown-boot"


def read_kmsg(
    path: Path = KMSG, from_start: bool = False, stop: Callable[[], bool] = lambda: False
) -> Iterator[KernelRecord]:
    """Records of the kernel log as they come (one per read()); from its end unless `from_start`."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not from_start:
            os.lseek(fd, 0, os.SEEK_END)
        while not stop():
            try:
                raw = os.read(fd, MAX_RECORD)  # one record per read; longer ones are not the kernel's
            except BlockingIOError:
                select.select([fd], [], [], 0.5)
                continue
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # overwritten before we read it: the next read resumes
                    log.warning("kernel log records were overwritten before they were read")
                    continue
                raise
            record = kmsg_record(raw)
            if record is not None:
                yield record
    finally:
        os.close(fd)


NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1


def open_audit_multicast() -> socket.socket:
    """Join the kernel's audit multicast group (needs CAP_AUDIT_READ); OSError when it cannot."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    try:
        sock.bind((0, AUDIT_NLGRP_READLOG))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    except OSError:
        sock.close()
        raise
    sock.settimeout(0.5)
    return sock


def audit_records(data: bytes) -> Iterator[KernelRecord]:
    """The seccomp records of one netlink read, as the kernel would print them (`audit: type=1326 ...`)."""
    while len(data) >= 16:
        length, kind = struct.unpack("=IH", data[:6])
        if length < 16 or length > len(data):
            return
        if kind == AUDIT_SECCOMP:
            text = data[16:length].rstrip(b"\0").decode("utf-8", "replace")
            serial = _AUDIT_SERIAL.search(text)
            if serial is not None and len(text) <= MAX_RECORD:
                yield KernelRecord(int(serial.group(1)), 0, f"{SECCOMP_PREFIX}{text}", source="audit")
        data = data[(length + 3) & ~3 :]


def read_audit(sock: socket.socket, stop: Callable[[], bool] = lambda: False) -> Iterator[KernelRecord]:
    """Seccomp records from the audit multicast group as they come, until `stop`."""
    try:
        while not stop():
            try:
                data = sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # the queue overflowed: later records still count
                    log.warning("audit records were lost: the receive queue overflowed")
                    continue
                raise
            yield from audit_records(data)
    finally:
        sock.close()


@dataclass
class Collector:
    """Kernel records in, AuditEvidence out (attribution and repeat folding; no I/O but /proc and,
    through `pods`, the API server)."""

    boot: str
    proc: Path = Path("/proc")
    repeat_s: float = REPEAT_S
    clock: Callable[[], float] = time.monotonic
    pods: PodResolver | None = None  # Kubernetes pods' processes; None: `runward run` replicas only
    unattributed_by: Counter[str] = field(default_factory=Counter)
    _last: dict[tuple[str, str | None, str], float] = field(default_factory=dict)
    _folded: dict[tuple[str, str | None, str], int] = field(default_factory=dict)

    def evidence(self, record: KernelRecord) -> AuditEvidence | None:
        seccomp = parse_seccomp(record.message)
        if seccomp is not None:
            return self._seccomp(record, seccomp)
        drop = egress_drop(record.message)
        if drop is not None:
            return self._egress(record, drop)
        return None

    @property
    def unattributed(self) -> int:
        return sum(self.unattributed_by.values())

    def attribute(self, pid: int) -> Attributed | str:
        """Whose the process is, or why it is no agent's (GONE, NOT_AN_AGENT, POD_UNKNOWN, ...)."""
        try:
            cgroup = (self.proc / str(pid) / "cgroup").read_text()
        except OSError:
            return GONE  # the process is gone (or never was ours to read)
        local = local_workload(cgroup)
        if local is not None:
            return Attributed(*local)
        path = kubepods_path(cgroup)
        if path is None or self.pods is None:
            return NOT_AN_AGENT
        identity = self.pods.resolve_path(path)
        if identity is None or identity.pod is None:
            return POD_UNKNOWN
        namespace, _, name = (identity.deployment or "").partition("/")
        deployment = deployment_of(namespace, name)
        if deployment is None:
            return NO_DEPLOYMENT
        return Attributed(deployment, identity.pod, identity.pod_uid, identity.container_id)

    def _seccomp(self, record: KernelRecord, seccomp: SeccompRecord) -> AuditEvidence | None:
        who = self.attribute(seccomp.pid)
        if isinstance(who, str):
            self.unattributed_by[who] += 1
            log.debug("seccomp record of pid %d (%s) not attributed: %s", seccomp.pid, seccomp.comm, who)
            return None
        refused = seccomp.action not in {"log", "allow"}
        reason = f"syscall {seccomp.syscall_name} is outside the agent's seccomp profile " + (
            f"and was refused ({seccomp.action})" if refused else "(logged, SCMP_ACT_LOG: enforce would refuse it)"
        )
        detail: dict[str, Any] = {
            "pid": seccomp.pid,
            "comm": seccomp.comm,
            "exe": seccomp.exe,
            "syscall_nr": seccomp.syscall,
            "arch": seccomp.arch,
            "seccomp_action": seccomp.action,
            "code": seccomp.code,
            "audit_id": seccomp.audit_id,
        }
        if who.pod_uid is not None:
            detail["pod_uid"] = who.pod_uid
        if who.container_id is not None:
            detail["container_id"] = who.container_id
        return self._emit(record, EvidenceSource.SECCOMP, who.deployment, who.pod, seccomp.syscall_name, reason, detail)

    def _egress(self, record: KernelRecord, drop: EgressDrop) -> AuditEvidence | None:
        reason = f"egress to {drop.destination} is outside the agent's egress allowlist"
        return self._emit(record, EvidenceSource.NETWORK, drop.deployment, None, drop.destination, reason, drop.fields)

    def _emit(
        self,
        record: KernelRecord,
        source: EvidenceSource,
        deployment: str,
        pod: str | None,
        action: str,
        reason: str,
        detail: dict[str, Any],
    ) -> AuditEvidence | None:
        key = (deployment, pod, f"{source.value}:{action}")
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.repeat_s:
            self._folded[key] = self._folded.get(key, 0) + 1
            return None
        self._last[key] = now
        origin = f"{self.boot}|{record.seq}" if record.source == "kmsg" else f"{self.boot}|{record.source}|{record.seq}"
        digest = hashlib.sha256(origin.encode()).hexdigest()[:24]
        return AuditEvidence(
            evidence_id=f"{source.value}:{digest}",
            deployment=deployment,
            ts=utcnow(),
            source=source,
            action=action,
            reason=reason,
            pod=pod,
            detail={**detail, f"{record.source}_seq": record.seq, "repeats": self._folded.pop(key, 0)},
        )


def summary(published: int, collector: Collector) -> str:
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(collector.unattributed_by.items()))
    return f"published {published}, unattributed {collector.unattributed}" + (f" ({reasons})" if reasons else "")


def run(
    kafka: str,
    kmsg: Path,
    from_start: bool,
    repeat_s: float,
    stop: Callable[[], bool] = lambda: False,
    pods: PodResolver | None = None,
    summary_s: float = SUMMARY_S,
) -> int:
    from runward.core.kafka import RecordProducer
    from runward.core.topics import AUDIT_EVIDENCE

    producer = RecordProducer(kafka, "runward-seccomplog", poll_thread=True)
    collector = Collector(boot_id(), repeat_s=repeat_s, pods=pods)
    published = 0
    lock = threading.Lock()
    logged, logged_at = "", time.monotonic()

    def publish(records: Iterator[KernelRecord], skip_seccomp: Callable[[], bool]) -> None:
        nonlocal published, logged, logged_at
        for record in records:
            if skip_seccomp() and record.message.startswith(SECCOMP_PREFIX):
                continue  # the multicast group gives the same record, unlimited
            with lock:
                evidence = collector.evidence(record)
                if evidence is not None:
                    producer.send(AUDIT_EVIDENCE, evidence.deployment, evidence)
                    published += 1
                    log.info("%s %s %s %s", evidence.deployment, evidence.pod, evidence.source.value, evidence.action)
                now = time.monotonic()
                if now - logged_at >= summary_s and (line := summary(published, collector)) != logged:
                    log.info("%s", line)  # the unattributed counts, by reason, at most once a summary_s
                    logged, logged_at = line, now

    # Threads started here inherit the cgroup namespace main() joined: both read /proc as the host.
    multicast: threading.Thread | None = None
    try:
        sock = open_audit_multicast()
    except OSError as exc:
        log.warning("seccomp records from the kernel log only (rate-limited): %s", exc)
    else:
        multicast = threading.Thread(
            target=publish, args=(read_audit(sock, stop), lambda: False), name="audit-multicast", daemon=True
        )
        multicast.start()
    try:
        publish(read_kmsg(kmsg, from_start, stop), lambda: multicast is not None and multicast.is_alive())
    finally:
        if multicast is not None:
            multicast.join(timeout=5)
        undelivered = producer.close()
        if undelivered:
            log.warning("%d audit evidence records were undelivered at exit", undelivered)
        log.info("%s", summary(published, collector))
    return 0


def join_host_cgroup_namespace(host: int = 1, proc: Path = Path("/proc")) -> bool:
    """Read /proc/<pid>/cgroup as the host prints it: a pod's container has its own cgroup
    namespace (the default on cgroup v2), in which other pods' paths are printed relative to the
    collector's own cgroup (`/../../kubepods-...`), and cgroupfs-driver paths lose the `kubepods`
    that names them. Joins the namespace of `host` (pid 1, the host's init, with hostPID) for the
    calling thread, the one that reads /proc; needs CAP_SYS_ADMIN (privileged). True if the
    collector now reads the host's paths."""
    own, theirs = proc / "self/ns/cgroup", proc / str(host) / "ns/cgroup"
    try:
        if os.readlink(own) == os.readlink(theirs):
            return True
        fd = os.open(theirs, os.O_RDONLY)
    except OSError as exc:
        log.warning("cannot join the host's cgroup namespace (pid %d): %s", host, exc)
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWCGROUP) != 0:
            log.warning("cannot join the host's cgroup namespace: %s", os.strerror(ctypes.get_errno()))
            return False
    finally:
        os.close(fd)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sensor.seccomplog", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kafka", metavar="BOOTSTRAP", help="bootstrap servers (default RUNWARD_KAFKA)")
    parser.add_argument("--kmsg", type=Path, default=KMSG, help="the kernel log device")
    parser.add_argument("--from-start", action="store_true", help="also read what the kernel log still holds")
    parser.add_argument("--repeat-s", type=float, default=REPEAT_S, help="fold repeats of one action per pod")
    parser.add_argument(
        "--kubernetes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="attribute Kubernetes pods' records through the API server (default: when in a cluster)",
    )
    parser.add_argument("--node", help="this node's name: only its pods are listed (default NODE_NAME)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("RUNWARD_LOG_LEVEL", "INFO"), stream=sys.stderr)
    from runward.core.config import Settings

    pods: PodResolver | None = None
    if args.kubernetes if args.kubernetes is not None else "KUBERNETES_SERVICE_HOST" in os.environ:
        from sensor.attribution.kubernetes import from_environment

        node = args.node or os.environ.get("NODE_NAME")
        if not node:
            log.warning("no node name (NODE_NAME): every node's pods will be listed")
        join_host_cgroup_namespace()
        pods = from_environment(None, node)

    stop = threading.Event()
    # SIGTERM (runward up stopping) ends the read loop, so the producer flushes what it holds.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        return run(args.kafka or Settings().kafka, args.kmsg, args.from_start, args.repeat_s, stop.is_set, pods)
    except PermissionError:
        print(f"runward seccomplog: cannot read {args.kmsg}: it needs root (CAP_SYSLOG)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
