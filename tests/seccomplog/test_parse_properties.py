"""The kernel-log parser on hostile input: arbitrary bytes and text, real lines cut short or with
garbage spliced in, invalid UTF-8, lines of a megabyte, and egress prefixes naming anything at all.

Whatever comes in, each function the collector calls per record (`kmsg_record`, then
`Collector.evidence`, which calls `seccomp_record`, `egress_drop` and `local_workload`) returns a
record or None (None is the documented rejection), never raises, and never attributes evidence to
a Deployment that is not a DNS-1123 `<namespace>/<name>`. The collector runs over a real /proc-like
directory whose cgroup files are as hostile as the lines.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runward.core.contracts import AuditEvidence
from sensor.seccomplog.collector import Collector
from sensor.seccomplog.parse import (
    MAX_RECORD,
    EgressDrop,
    KernelRecord,
    SeccompRecord,
    egress_drop,
    kmsg_record,
    local_workload,
    seccomp_record,
)

# The recorded lines of test_collector.py plus the kernel's documented example.
SECCOMP_LINE = (
    "5,377,472000729,-;audit: type=1326 audit(1796056340.706:854): auid=1381465840 uid=0 gid=0 ses=10 "
    'pid=15286 comm="runc:[2:INIT]" exe="/" sig=0 arch=c000003e syscall=15 compat=0 ip=0x7f2ae3412059 '
    "code=0x7ffc0000\n"
)
ERRNO_LINE = (
    "5,132,1000,-;audit: type=1326 audit(1796056335.174:132): auid=4294967295 uid=0 gid=0 "
    'ses=4294967295 pid=15004 comm="python3" exe="/usr/bin/python3.11" sig=0 arch=c000003e syscall=165 '
    "compat=0 ip=0x40828e code=0x00050000\n SUBSYSTEM=audit\n"
)
NFT_LINE = (
    "4,1201,1000000,-;runward-egress:agents/reporter: IN= OUT=veth-rw0 SRC=10.200.0.2 DST=203.0.113.7 LEN=60 "
    "TOS=0x00 PREC=0x00 TTL=64 ID=4242 DF PROTO=TCP SPT=40112 DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0 \n"
)
REAL = [SECCOMP_LINE, ERRNO_LINE, NFT_LINE]
MIB = 1 << 20

# Strict Kubernetes names: namespace a DNS-1123 label, Deployment name a DNS-1123 subdomain.
LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
PIDS = range(100, 108)  # the fake /proc's processes


def valid_deployment(value: str) -> bool:
    namespace, sep, name = value.partition("/")
    return bool(sep and LABEL.fullmatch(namespace) and len(name) <= 253 and SUBDOMAIN.fullmatch(name))


def splice(line: str, cut: int, insert: str) -> str:
    cut %= len(line) + 1
    return line[:cut] + insert + line[cut:]


names = st.one_of(
    st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True),
    st.text(max_size=20),
    st.sampled_from(["", "-", ".", "..", "a..b", "-a", "a-", "A", "a_b", "a/b", "a" * 64, "a" * 254, "é", "a b"]),
)
egress_messages = st.builds(
    lambda ns, name, rest: f"runward-egress:{ns}/{name}: {rest}",
    names,
    names,
    st.one_of(st.just("IN= OUT=eth0 SRC=10.0.0.2 DST=203.0.113.7 PROTO=TCP SPT=1 DPT=443"), st.text(max_size=60)),
)
seccomp_messages = st.builds(
    lambda pid, syscall, code, arch: (
        f'audit: type=1326 audit(1.0:1): pid={pid} comm="x" arch={arch} syscall={syscall} code={code}'
    ),
    st.one_of(
        st.sampled_from([str(p) for p in PIDS]),
        st.sampled_from([str(p) for p in PIDS]),
        st.text(max_size=12),
        st.sampled_from(["-1", "0", "9" * 5000]),
    ),
    st.one_of(st.integers(0, 460).map(str), st.integers(-5, 1000).map(str), st.text(max_size=8), st.just("1" * 5000)),
    st.one_of(st.sampled_from(["0x7ffc0000", "0x50001", "0x80000000", "", "zz", "-0x1", "f" * 5000]), st.text()),
    st.sampled_from(["c000003e", "40000003", ""]),
)
kmsg_header = st.builds(
    lambda prio, seq, usec: f"{prio},{seq},{usec},-;",
    st.integers(0, 7),
    st.one_of(st.integers(0, 2**64), st.just("9" * 5000), st.just("١٢")),
    st.integers(0, 2**64),
)
# A megabyte, made by repetition (drawing it byte by byte would take Hypothesis minutes).
huge = st.builds(
    lambda line, filler, at: splice(line, at, filler * (MIB // len(filler) + 1)),
    st.sampled_from(REAL + ["audit: type=1326 ", "runward-egress:a/b: ", ""]),
    st.sampled_from(["A", 'a="', "pid=1 ", "runward-egress:", "9", "\\", "\n", "\udcff", "x=" * 3]),
    st.integers(0, 400),
)
truncated = st.builds(lambda line, cut: line[: cut % (len(line) + 1)], st.sampled_from(REAL), st.integers(0, 400))
spliced = st.builds(splice, st.sampled_from(REAL), st.integers(0, 400), st.text(max_size=30))
lines: st.SearchStrategy[str] = st.one_of(
    st.text(max_size=300),
    truncated,
    spliced,
    huge,
    st.builds(str.__add__, kmsg_header, st.one_of(egress_messages, seccomp_messages, st.text(max_size=80))),
)
# Bytes: arbitrary, and real lines with invalid UTF-8 (lone continuation bytes, truncated sequences,
# overlongs, surrogates) put anywhere in them.
invalid_utf8 = st.sampled_from(
    [b"\xff", b"\xfe\xfe", b"\x80", b"\xc3", b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80", b"\x00"]
)
raw_lines: st.SearchStrategy[bytes] = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda line, at, bad: splice(line, at, "\x00").encode().replace(b"\x00", bad),
        st.sampled_from(REAL),
        st.integers(0, 400),
        invalid_utf8,
    ),
    lines.map(lambda s: s.encode("utf-8", "surrogateescape")),
)
valid_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
replica_cgroups = st.builds(
    lambda ns, name, pod: f"0::/runward/{ns}_{name}/{pod}\n", valid_names, valid_names, valid_names
)
cgroup_files = st.one_of(
    # Mostly a replica of `runward run`, so seccomp records are attributed and published too.
    replica_cgroups,
    replica_cgroups,
    replica_cgroups,
    st.builds(lambda ns, name, pod: f"0::/runward/{ns}_{name}/{pod}\n", names, names, st.text(max_size=20)),
    st.text(max_size=200),
    st.just("0::/user.slice/user-0.slice/session-1.scope\n"),
)


@pytest.fixture(scope="module")
def proc() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def check_record(record: KernelRecord | None) -> None:
    if record is not None:
        assert isinstance(record, KernelRecord) and record.seq >= 0 and record.usec >= 0
        assert "\n" not in record.message and len(record.message) <= MAX_RECORD


def check_message(message: str) -> None:
    seccomp = seccomp_record(message)
    if seccomp is not None:
        assert isinstance(seccomp, SeccompRecord) and seccomp.pid > 0 and seccomp.syscall >= 0
    drop = egress_drop(message)
    if drop is not None:
        assert isinstance(drop, EgressDrop) and valid_deployment(drop.deployment), drop.deployment


def check_collector(proc: Path, record: KernelRecord | None, cgroups: list[str]) -> None:
    if record is None:
        return
    for pid, cgroup in zip(PIDS, cgroups, strict=True):
        (proc / str(pid)).mkdir(exist_ok=True)
        (proc / str(pid) / "cgroup").write_text(cgroup, errors="surrogateescape")
    evidence = Collector("boot", proc=proc, repeat_s=0).evidence(record)
    if evidence is not None:
        assert isinstance(evidence, AuditEvidence) and valid_deployment(evidence.deployment)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(line=lines, cgroups=st.lists(cgroup_files, min_size=len(PIDS), max_size=len(PIDS)))
def test_text_lines_give_a_record_or_none(proc: Path, line: str, cgroups: list[str]) -> None:
    record = kmsg_record(line)
    check_record(record)
    check_message(line)
    if record is not None:
        check_message(record.message)
    check_collector(proc, record, cgroups)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=raw_lines, cgroups=st.lists(cgroup_files, min_size=len(PIDS), max_size=len(PIDS)))
def test_raw_reads_give_a_record_or_none(proc: Path, raw: bytes, cgroups: list[str]) -> None:
    record = kmsg_record(raw)
    check_record(record)
    check_collector(proc, record, cgroups)


@settings(max_examples=300, deadline=None)
@given(
    header=kmsg_header,
    message=st.one_of(seccomp_messages, egress_messages),
    cgroups=st.lists(cgroup_files, min_size=len(PIDS), max_size=len(PIDS)),
)
def test_shaped_records_are_attributed_only_to_valid_deployments(
    proc: Path, header: str, message: str, cgroups: list[str]
) -> None:
    """Records shaped like the kernel's with hostile fields: the deepest path (parse, attribute
    through the fake /proc, build the AuditEvidence) runs, and names only valid Deployments."""
    record = kmsg_record(header + message)
    check_record(record)
    check_message(message)
    check_collector(proc, record, cgroups)


@settings(max_examples=300, deadline=None)
@given(cgroup=cgroup_files)
def test_cgroup_attribution_names_only_valid_deployments(cgroup: str) -> None:
    who = local_workload(cgroup)
    assert who is None or valid_deployment(who[0]), who


def test_documented_rejections() -> None:
    """The bugs this property test found, pinned: each was an exception or a bad attribution."""
    assert kmsg_record("1," + "9" * 5000 + ",0,-;x") is None  # int() refuses > 4300 digits
    assert kmsg_record(SECCOMP_LINE + "A" * MIB) is None  # longer than one /dev/kmsg read can be
    assert seccomp_record("audit: type=1326 " + "a" * MIB) is None  # was quadratic in the field scan
    assert egress_drop("runward-egress:-/..: DST=1.2.3.4") is None  # not Kubernetes names
    assert egress_drop("eth0: runward-egress:agents/reporter: DST=1.2.3.4") is None  # not the prefix
    assert seccomp_record('exe="/tmp/x type=1326 pid=1 syscall=59"') is None  # not an audit record
    assert local_workload("0::/runward/-_../pod\n") is None
    for line in REAL:  # and the real lines still parse
        record = kmsg_record(line)
        assert record is not None
        assert seccomp_record(record.message) is not None or egress_drop(record.message) is not None
