"""`python -m edges.seccomplog`: the kernel log's would-be violations as AuditEvidence.

Reads /dev/kmsg (from its end: what happened before the collector started is not its
evidence), turns seccomp audit records (type 1326) and the egress allowlist's nftables log lines
(prefix `runward-egress:<namespace>/<name>: `, see `edges.seccomplog.parse`) into AuditEvidence,
attributes them to the agent and publishes them on runward.audit-evidence keyed by its
Deployment id. The enforcer stores them; the API lists them; the audit soak reads them.

Attribution: a seccomp record names a pid; its /proc/<pid>/cgroup places it in the cgroup v2 that
`runward run` made for the replica (`/runward/<namespace>_<name>/<pod>`). A record whose process
is gone, or that is not an agent's, is counted and dropped (never published as someone else's).
An nftables line names the Deployment in its prefix.

Limits, said plainly: the kernel prints audit records to its log only when no audit daemon
listens on the audit netlink socket, and rate-limits them ("kauditd_printk_skb: N callbacks
suppressed"); a flood loses records. The collector itself folds repeats of one action by one pod
within `repeat_s` into the next record's `repeats` count, so one noisy syscall is one record a
minute, not thousands.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edges.seccomplog.parse import (
    MAX_RECORD,
    EgressDrop,
    KernelRecord,
    SeccompRecord,
    egress_drop,
    kmsg_record,
    local_workload,
)
from edges.seccomplog.parse import seccomp_record as parse_seccomp
from runward.core.contracts import AuditEvidence, EvidenceSource, utcnow

log = logging.getLogger(__name__)
KMSG = Path("/dev/kmsg")
REPEAT_S = 60.0


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


@dataclass
class Collector:
    """Kernel records in, AuditEvidence out (attribution and repeat folding; no I/O but /proc)."""

    boot: str
    proc: Path = Path("/proc")
    repeat_s: float = REPEAT_S
    clock: Callable[[], float] = time.monotonic
    unattributed: int = 0
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

    def attribute(self, pid: int) -> tuple[str, str] | None:
        try:
            return local_workload((self.proc / str(pid) / "cgroup").read_text())
        except OSError:
            return None  # the process is gone (or never was ours to read)

    def _seccomp(self, record: KernelRecord, seccomp: SeccompRecord) -> AuditEvidence | None:
        who = self.attribute(seccomp.pid)
        if who is None:
            self.unattributed += 1
            return None
        deployment, pod = who
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
        return self._emit(record, EvidenceSource.SECCOMP, deployment, pod, seccomp.syscall_name, reason, detail)

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
        digest = hashlib.sha256(f"{self.boot}|{record.seq}".encode()).hexdigest()[:24]
        return AuditEvidence(
            evidence_id=f"{source.value}:{digest}",
            deployment=deployment,
            ts=utcnow(),
            source=source,
            action=action,
            reason=reason,
            pod=pod,
            detail={**detail, "kmsg_seq": record.seq, "repeats": self._folded.pop(key, 0)},
        )


def run(kafka: str, kmsg: Path, from_start: bool, repeat_s: float, stop: Callable[[], bool] = lambda: False) -> int:
    from runward.core.kafka import RecordProducer
    from runward.core.topics import AUDIT_EVIDENCE

    producer = RecordProducer(kafka, "runward-seccomplog", poll_thread=True)
    collector = Collector(boot_id(), repeat_s=repeat_s)
    published = 0
    try:
        for record in read_kmsg(kmsg, from_start, stop):
            evidence = collector.evidence(record)
            if evidence is None:
                continue
            producer.send(AUDIT_EVIDENCE, evidence.deployment, evidence)
            published += 1
            log.info("%s %s %s", evidence.deployment, evidence.source.value, evidence.action)
    finally:
        undelivered = producer.close()
        if undelivered:
            log.warning("%d audit evidence records were undelivered at exit", undelivered)
        log.info("published %d, unattributed %d", published, collector.unattributed)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edges.seccomplog", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kafka", metavar="BOOTSTRAP", help="bootstrap servers (default RUNWARD_KAFKA)")
    parser.add_argument("--kmsg", type=Path, default=KMSG, help="the kernel log device")
    parser.add_argument("--from-start", action="store_true", help="also read what the kernel log still holds")
    parser.add_argument("--repeat-s", type=float, default=REPEAT_S, help="fold repeats of one action per pod")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("RUNWARD_LOG_LEVEL", "INFO"), stream=sys.stderr)
    from runward.core.config import Settings

    stop = threading.Event()
    # SIGTERM (runward up stopping) ends the read loop, so the producer flushes what it holds.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        return run(args.kafka or Settings().kafka, args.kmsg, args.from_start, args.repeat_s, stop.is_set)
    except PermissionError:
        print(f"runward seccomplog: cannot read {args.kmsg}: it needs root (CAP_SYSLOG)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
