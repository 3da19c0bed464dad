"""The kernel-log collector: a real process under a real seccomp SCMP_ACT_LOG filter, started the
way `runward run` starts an agent's replica (its own cgroup v2), makes the logged syscall; the
collector reads the kernel's audit record from /dev/kmsg, attributes it to the agent and pod, and
publishes AuditEvidence on runward.audit-evidence on the real broker. Parsing is checked against
real kernel lines, including the egress allowlist's nftables log prefix."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from runward.core.contracts import AuditEvidence
from runward.core.topics import AUDIT_EVIDENCE
from sensor.seccomplog.collector import KMSG, Collector, audit_records, run
from sensor.seccomplog.parse import egress_drop, kmsg_record, local_workload, seccomp_record
from sensor.workloads import run_workload
from tests.kafka_reading import read_records

HELPER = Path(__file__).with_name("log_syscall.py")
PERSONALITY = 135  # personality(0): a query, harmless, and nothing else in the helper calls it

# Recorded from this machine's /dev/kmsg (runc's init under a logging profile, a drop of the
# local egress allowlist as nftables prints it).
RUNC_LINE = (
    "5,377,472000729,-;audit: type=1326 audit(1796056340.706:854): auid=1381465840 uid=0 gid=0 ses=10 "
    'pid=15286 comm="runc:[2:INIT]" exe="/" sig=0 arch=c000003e syscall=15 compat=0 ip=0x7f2ae3412059 '
    "code=0x7ffc0000\n"
)
NFT_LINE = (
    "4,1201,1000000,-;runward-egress:agents/reporter: IN= OUT=veth-rw0 SRC=10.200.0.2 DST=203.0.113.7 LEN=60 "
    "TOS=0x00 PREC=0x00 TTL=64 ID=4242 DF PROTO=TCP SPT=40112 DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0 \n"
)


def test_kernel_lines_parse() -> None:
    record = kmsg_record(RUNC_LINE)
    assert record is not None and record.seq == 377
    seccomp = seccomp_record(record.message)
    assert seccomp is not None
    assert (seccomp.pid, seccomp.comm, seccomp.syscall_name, seccomp.action) == (
        15286,
        "runc:[2:INIT]",
        "rt_sigreturn",
        "log",
    )
    assert seccomp.audit_id == "1796056340.706:854"
    errno_line = RUNC_LINE.replace("code=0x7ffc0000", "code=0x50001").replace("arch=c000003e", "arch=40000003")
    errno_record = kmsg_record(errno_line)
    assert errno_record is not None
    refused = seccomp_record(errno_record.message)
    assert refused is not None and refused.action == "errno" and refused.syscall_name == "syscall_15"
    nft = kmsg_record(NFT_LINE)
    assert nft is not None and seccomp_record(nft.message) is None
    drop = egress_drop(nft.message)
    assert drop is not None and drop.deployment == "agents/reporter" and drop.destination == "203.0.113.7:443/tcp"
    assert egress_drop("runward-egress:Bad_NS/x: DST=1.2.3.4") is None


def test_cgroup_attribution_follows_runward_run_layout() -> None:
    assert local_workload("0::/runward/agents_reporter/reporter-abc-x2x7q\n") == (
        "agents/reporter",
        "reporter-abc-x2x7q",
    )
    nested = "12:pids:/\n0::/runward/shop_retriever/retriever-7d9f-abcde/ctr-1\n"
    assert local_workload(nested) == ("shop/retriever", "retriever-7d9f-abcde")
    assert local_workload("0::/user.slice/user-0.slice/session-1.scope\n") is None
    assert local_workload("0::/runward/agents_reporter\n") is None


def netlink(kind: int, text: str) -> bytes:
    """One audit netlink message as the multicast group delivers it (header, text, padding)."""
    body = text.encode()
    length = 16 + len(body)
    return struct.pack("=IHHII", length, kind, 0, 0, 0) + body + b"\0" * ((-length) % 4)


def test_audit_multicast_records_are_the_printed_records(tmp_path: Path) -> None:
    printed = kmsg_record(RUNC_LINE)
    assert printed is not None
    text = printed.message.removeprefix("audit: type=1326 ")
    data = netlink(1300, "audit(1796056340.706:853): arch=c000003e syscall=59") + netlink(1326, text)
    (record,) = audit_records(data)
    assert (record.source, record.seq, record.message) == ("audit", 854, printed.message)
    assert list(audit_records(netlink(1326, text)[:20])) == []  # a truncated read yields nothing
    (tmp_path / "15286").mkdir()
    (tmp_path / "15286" / "cgroup").write_text("0::/runward/agents_reporter/reporter-runc-1a2b3c4d\n")
    collector = Collector("boot", proc=tmp_path)
    evidence = collector.evidence(record)
    assert evidence is not None and (evidence.deployment, evidence.pod) == ("agents/reporter", "reporter-runc-1a2b3c4d")
    assert evidence.detail["audit_seq"] == 854 and "kmsg_seq" not in evidence.detail
    collector.repeat_s = 0
    again = collector.evidence(printed)  # the same record read from the kernel log: another id
    assert again is not None and again.evidence_id != evidence.evidence_id


def test_unattributed_records_are_dropped_and_counted(tmp_path: Path) -> None:
    collector = Collector("boot", proc=tmp_path)  # no /proc/<pid>: the process is gone
    record = kmsg_record(RUNC_LINE)
    assert record is not None and collector.evidence(record) is None and collector.unattributed == 1
    network = kmsg_record(NFT_LINE)
    assert network is not None
    evidence = collector.evidence(network)
    assert evidence is not None and evidence.source.value == "network" and evidence.deployment == "agents/reporter"
    assert collector.evidence(network) is None  # a repeat within repeat_s is folded...
    collector.repeat_s = 0
    again = collector.evidence(network)
    assert again is not None and again.detail["repeats"] == 1  # ...and counted on the next record


@pytest.mark.skipif(os.geteuid() != 0 or not os.access(KMSG, os.R_OK), reason="needs root and /dev/kmsg")
def test_seccomp_log_of_a_runward_run_workload_is_published_as_its_evidence(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    deployment = f"agents/sc-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    collector = threading.Thread(target=run, args=(kafka_bootstrap, KMSG, False, 60.0, stop.is_set), daemon=True)
    collector.start()
    time.sleep(1.0)  # the collector reads from the log's end: let it get there first
    try:
        with run_workload(
            deployment, "default", 1, [sys.executable, str(HELPER), str(PERSONALITY), "3", "0.25"], home=tmp_path
        ) as workload:
            pod = workload.replicas[0].pod
            assert workload.wait(timeout=30) == [0]
        records = read_records(kafka_bootstrap, AUDIT_EVIDENCE.name, lambda v: v.get("deployment") == deployment, 1)
    finally:
        stop.set()
        collector.join(timeout=15)
    assert records, "no evidence published (is the kernel rate-limiting audit printk? see dmesg)"
    key, value = records[0]
    evidence = AuditEvidence.model_validate(value)
    assert key == deployment
    assert (evidence.source.value, evidence.action, evidence.pod) == ("seccomp", "personality", pod)
    assert evidence.detail["seccomp_action"] == "log" and evidence.detail["syscall_nr"] == PERSONALITY
    assert evidence.detail["comm"].startswith("python")


@pytest.mark.skipif(os.geteuid() != 0 or not os.access(KMSG, os.R_OK), reason="needs root, nft and /dev/kmsg")
def test_nftables_egress_drop_is_published_as_network_evidence(kafka_bootstrap: str) -> None:
    """A real nftables rule (its own table, in the host's network namespace, for a TEST-NET-1
    address only) logs a dropped connection with the agreed prefix; the collector publishes it."""
    suffix = uuid.uuid4().hex[:8]
    deployment, table = f"agents/net-{suffix}", f"runward_evidence_{suffix}"
    stop = threading.Event()
    collector = threading.Thread(target=run, args=(kafka_bootstrap, KMSG, False, 60.0, stop.is_set), daemon=True)
    collector.start()
    time.sleep(1.0)
    nft = ["nft", "-f", "-"]
    ruleset = (
        f"table inet {table} {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n"
        f'  ip daddr 192.0.2.77 tcp dport 443 log prefix "runward-egress:{deployment}: " drop\n }}\n}}\n'
    )
    subprocess.run(nft, input=ruleset, text=True, check=True)
    try:
        with socket.socket() as sock:
            sock.settimeout(1.0)
            with pytest.raises(OSError):
                sock.connect(("192.0.2.77", 443))
        records = read_records(kafka_bootstrap, AUDIT_EVIDENCE.name, lambda v: v.get("deployment") == deployment, 1)
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], check=False)
        stop.set()
        collector.join(timeout=15)
    assert records, "no network evidence published"
    evidence = AuditEvidence.model_validate(records[0][1])
    assert (evidence.source.value, evidence.action) == ("network", "192.0.2.77:443/tcp")
    assert evidence.detail["DPT"] == "443" and evidence.pod is None
