"""Kernel records -> attributed RawSensorEvents: attribution, keys, losses, dedup, DNS names."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

from runward.core.codec import decode as decode_record
from runward.core.codec import encode
from runward.core.contracts.raw import ConnectDetail, SyscallSetDetail
from runward.core.topics import RAW_SENSOR
from sensor.attribution.base import Identity
from sensor.dedup import Deduper
from sensor.pipeline import Pipeline
from sensor.wire import CapRecord, ConnRecord, DnsRecord, ExecRecord, ExitRecord, Header, OpenRecord

AGENT = Identity(
    namespace="agents",
    pod="researcher-7d9f8c6b5d-x2x4q",
    pod_uid="0b7f0c5e-6d7c-4a4e-9a57-3b1f4e2c9d10",
    deployment="agents/researcher",
    service_account="researcher",
)


class FakeResolver:
    def __init__(self, known: dict[int, Identity]) -> None:
        self.known = known
        self.calls = 0

    def resolve(self, cgroup_id: int) -> Identity | None:
        self.calls += 1
        return self.known.get(cgroup_id)

    def watch_paths(self) -> list[Path]:
        return []


def hdr(cg: int = 42, t: float = 100.0, losses: int = 0, pid: int = 7, comm: str = "python3") -> Header:
    return Header(type=0, pid=pid, tid=pid, losses=losses, cgroup_id=cg, ts_ns=int(t * 1e9), comm=comm)


def pipeline(window: float = 1.0) -> Pipeline:
    return Pipeline("node-a", FakeResolver({42: AGENT}), Deduper(window), wall_offset_ns=1_700_000_000 * 10**9)


def test_event_is_attributed_keyed_by_deployment_and_valid_on_the_topic() -> None:
    p = pipeline()
    out = p.handle(ExecRecord(hdr(), "/usr/bin/curl", ["curl", "-s", "x"], False, 6, "bash"))
    assert out is not None
    assert out.key == "agents/researcher"
    a = out.event.attribution
    assert (a.node, a.cgroup_id, a.namespace, a.pod, a.deployment, a.service_account) == (
        "node-a",
        42,
        "agents",
        AGENT.pod,
        "agents/researcher",
        "researcher",
    )
    assert out.event.ts == datetime.fromtimestamp(1_700_000_100, tz=UTC)
    assert out.event.detail.kind == "exec" and out.event.pid == 7 and out.event.comm == "python3"
    again = decode_record(RAW_SENSOR, encode(out.event))  # what ingest will see
    assert again == out.event


def test_exec_argv_is_redacted_before_it_is_published() -> None:
    p = pipeline()
    argv = ["psql", "--password", "hunter2-node-secret", "PGPASSWORD=s3cr3t-node-value", "-h", "db.internal"]
    out = p.handle(ExecRecord(hdr(), "/usr/bin/psql", argv, False, 6, "bash"))
    assert out is not None
    wire = encode(out.event)  # the bytes the publisher sends to runward.raw.sensor
    assert b"hunter2-node-secret" not in wire and b"s3cr3t-node-value" not in wire
    assert out.event.detail.argv == ["psql", "--password", "[REDACTED]", "PGPASSWORD=[REDACTED]", "-h", "db.internal"]
    # Ordinary arguments are evidence and go out as they are.
    plain = p.handle(
        ExecRecord(hdr(t=101.0), "/usr/bin/curl", ["curl", "-s", "https://example.com/a"], False, 6, "bash")
    )
    assert plain is not None and plain.event.detail.argv == ["curl", "-s", "https://example.com/a"]


def test_a_repeated_command_line_is_redacted_every_time_and_no_secret_is_cached() -> None:
    """The redacted argv is cached per command line: the second and later events (past the dedup
    window, in other pipelines) are still redacted, another command line is not
    answered from the first one's entry, and the cache holds no unredacted argument."""
    from sensor import pipeline as pipeline_mod

    argv = ["mysql", "--password=hunter2-cached-secret", "-h", "db"]
    outs = [
        p.handle(ExecRecord(hdr(t=100.0 + 5 * i), "/usr/bin/mysql", list(argv), False, 6, "bash"))
        for i, p in enumerate([pipeline(), pipeline(), pipeline()])
    ]
    assert all(o is not None and o.event.detail.argv == ["mysql", "--password=[REDACTED]", "-h", "db"] for o in outs)
    other = pipeline().handle(
        ExecRecord(hdr(), "/usr/bin/mysql", ["mysql", "-h", "hunter2-cached-secret"], False, 6, "x")
    )
    assert other is not None and other.event.detail.argv == ["mysql", "-h", "hunter2-cached-secret"]
    assert not any(
        "hunter2-cached-secret" in arg for v in pipeline_mod._argv_cache.values() for arg in v if "--password" in arg
    )
    assert "hunter2-cached-secret" not in repr(list(pipeline_mod._argv_cache.keys()))


def test_unknown_cgroup_is_keyed_by_node_and_cgroup() -> None:
    p = pipeline()
    out = p.handle(OpenRecord(hdr(cg=9), "/etc/hosts", 0, True))
    assert out is not None and out.key == "node-a:9"
    assert out.event.attribution.deployment is None and p.unattributed == 1


def test_losses_ride_on_the_next_event_that_goes_out_even_across_folded_ones() -> None:
    p = pipeline()
    first = p.handle(OpenRecord(hdr(t=1.0), "/a", 0, True))
    assert first is not None and first.event.kernel_losses == 0
    folded = p.handle(OpenRecord(hdr(t=1.1, losses=3), "/a", 0, True))
    assert folded is None
    p.note_dropped(42, 2)  # the producer queue was full for one of this container's events
    nxt = p.handle(OpenRecord(hdr(t=1.2, losses=1), "/b", 0, True))
    assert nxt is not None and nxt.event.kernel_losses == 6
    after = p.handle(OpenRecord(hdr(t=1.3), "/c", 0, True))
    assert after is not None and after.event.kernel_losses == 0


def test_exits_of_different_programs_are_not_folded_together() -> None:
    p = pipeline()
    assert p.handle(ExitRecord(hdr(comm="true"), 0)) is not None
    assert p.handle(ExitRecord(hdr(comm="python3"), 0)) is not None
    assert p.handle(ExitRecord(hdr(comm="true", t=100.2), 0)) is None
    assert p.dedup.folded == {"exit": 1}


def test_syscall_set_is_sent_only_when_it_grows_and_is_cumulative() -> None:
    p = pipeline()
    first = p.syscalls(42, ["read", "openat"], 0)
    assert first is not None and isinstance(first.event.detail, SyscallSetDetail)
    assert first.event.detail.syscalls == ["openat", "read"]
    assert p.syscalls(42, ["openat"], 0) is None
    assert p.syscalls(42, ["read", "openat"], 0) is None
    grown = p.syscalls(42, ["connect"], 0)
    assert grown is not None and isinstance(grown.event.detail, SyscallSetDetail)
    assert grown.event.detail.syscalls == ["connect", "openat", "read"]
    p.forget(42)
    assert p.syscalls(42, ["read"], 0) is not None  # a forgotten cgroup starts afresh


def dns_response(name: str, ip: bytes) -> bytes:
    qname = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"
    msg = struct.pack(">HHHHHH", 1, 0x8180, 1, 1, 0, 0) + qname + struct.pack(">HH", 1, 1)
    return msg + b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + ip


def dns_query(name: str) -> bytes:
    qname = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)


def test_dns_query_becomes_an_event_and_the_answer_names_the_later_connect() -> None:
    p = pipeline()
    q = p.handle(DnsRecord(hdr(t=1.0), False, 2, "10.0.0.2", 53, 40, dns_query("tools.example")))
    assert q is not None and q.event.detail.kind == "dns"
    assert (q.event.detail.name, q.event.detail.qtype) == ("tools.example", "A")
    response = dns_response("tools.example", b"\x0a\x09\x08\x07")
    answer = p.handle(DnsRecord(hdr(t=1.01), True, 2, "10.0.0.2", 53, 60, response))
    assert answer is None and p.dns_responses == 1
    c = p.handle(ConnRecord(hdr(t=1.05), "connect", "ipv4", "10.9.8.7", 443, "tcp", 0))
    assert c is not None and isinstance(c.event.detail, ConnectDetail)
    assert c.event.detail.dns_name == "tools.example"
    other = p.handle(ConnRecord(hdr(cg=9, t=1.06), "connect", "ipv4", "10.9.8.7", 443, "tcp", 0))
    assert other is not None and isinstance(other.event.detail, ConnectDetail)
    assert other.event.detail.dns_name is None  # names are per container


def test_unparseable_dns_payload_is_counted_not_sent() -> None:
    p = pipeline()
    assert p.handle(DnsRecord(hdr(), False, 2, "1.1.1.1", 53, 3, b"abc")) is None
    assert p.malformed_dns == 1


def test_capability_names() -> None:
    out = pipeline().handle(CapRecord(hdr(), 10, 0))
    assert out is not None and out.event.detail.kind == "capability"
    assert out.event.detail.capability == "CAP_NET_BIND_SERVICE"


def test_a_zero_window_lets_every_event_through() -> None:
    p = pipeline(window=0)
    sent = [p.handle(OpenRecord(hdr(t=1.0 + i * 0.001), "/a", 0, True)) for i in range(5)]
    assert all(e is not None for e in sent) and not p.dedup.folded


def test_event_ids_are_unique_and_attribution_follows_the_resolver() -> None:
    resolver = FakeResolver({})
    p = Pipeline("node-a", resolver, Deduper(0))
    first = p.handle(OpenRecord(hdr(t=1.0), "/a", 0, True))
    resolver.known[42] = AGENT  # the registry caught up
    second = p.handle(OpenRecord(hdr(t=1.1), "/b", 0, True))
    assert first is not None and second is not None
    assert first.event.event_id != second.event.event_id
    assert first.event.attribution.deployment is None
    assert second.event.attribution.deployment == "agents/researcher" and second.key == "agents/researcher"
