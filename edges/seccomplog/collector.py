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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edges.seccomplog.parse import (
    AUDIT_SECCOMP,
    MAX_RECORD,
    SECCOMP_PREFIX,
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
_AUDIT_SERIAL = re.compile(r"audit\([0-9.]{1,40}:([0-9]{1,20})\)")


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


def run(kafka: str, kmsg: Path, from_start: bool, repeat_s: float, stop: Callable[[], bool] = lambda: False) -> int:
    from runward.core.kafka import RecordProducer
    from runward.core.topics import AUDIT_EVIDENCE

    producer = RecordProducer(kafka, "runward-seccomplog", poll_thread=True)
    collector = Collector(boot_id(), repeat_s=repeat_s)
    published = 0
    lock = threading.Lock()

    def publish(records: Iterator[KernelRecord], skip_seccomp: Callable[[], bool]) -> None:
        nonlocal published
        for record in records:
            if skip_seccomp() and record.message.startswith(SECCOMP_PREFIX):
                continue  # the multicast group gives the same record, unlimited
            with lock:
                evidence = collector.evidence(record)
                if evidence is None:
                    continue
                producer.send(AUDIT_EVIDENCE, evidence.deployment, evidence)
                published += 1
            log.info("%s %s %s", evidence.deployment, evidence.source.value, evidence.action)

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
