"""Decoding of perf samples, and the Python layouts checked against the built object's BTF."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from sensor import wire
from sensor.wire import FIELDS, WireError, decode


def header(kind: int, pid: int = 100, cg: int = 77, losses: int = 0, comm: bytes = b"agent") -> bytes:
    return struct.pack("<IIIIQQ16s", kind, pid, pid, losses, cg, 5_000_000_000, comm)


def test_exec_sample_splits_argv_and_reads_parent() -> None:
    args = b"curl\0-s\0http://x\0"
    body = struct.pack("<II16s256s1024s", 1, len(args), b"bash", b"/usr/bin/curl", args)
    record = decode(header(wire.EV_EXEC) + body + b"\0" * 4)  # perf pads samples to 8 bytes
    assert isinstance(record, wire.ExecRecord)
    assert record.binary == "/usr/bin/curl"
    assert record.argv == ["curl", "-s", "http://x"]
    assert (record.ppid, record.parent_comm, record.argv_truncated) == (1, "bash", False)
    assert record.header.cgroup_id == 77 and record.header.comm == "agent"


def test_exec_argv_filling_the_buffer_is_marked_truncated() -> None:
    args = b"a" * 1024
    body = struct.pack("<II16s256s1024s", 1, 1024, b"sh", b"/bin/echo", args)
    record = decode(header(wire.EV_EXEC) + body)
    assert isinstance(record, wire.ExecRecord) and record.argv_truncated


@pytest.mark.parametrize(("status", "code"), [(0, 0), (3 << 8, 3), (9, -9), (15 | 0x80, -15)])
def test_exit_status_is_reported_like_returncode(status: int, code: int) -> None:
    record = decode(header(wire.EV_EXIT) + struct.pack("<iI", status, 0))
    assert isinstance(record, wire.ExitRecord) and record.exit_code == code


def test_open_path_is_rebuilt_from_leaf_first_components() -> None:
    path = b"passwd\0etc\0"
    sample = header(wire.EV_OPEN) + struct.pack("<QII", 0o2000000, len(path), 1) + path
    record = decode(sample)
    assert isinstance(record, wire.OpenRecord)
    assert (record.path, record.flags, record.complete) == ("/etc/passwd", 0o2000000, True)


def test_incomplete_or_truncated_path_is_never_shown_as_absolute() -> None:
    deep = b"f\0e\0d\0"
    for flags in (0, 1 | 2):
        record = decode(header(wire.EV_OPEN) + struct.pack("<QII", 0, len(deep), flags) + deep)
        assert isinstance(record, wire.OpenRecord)
        assert record.path == ".../d/e/f" and not record.complete


def test_root_itself_decodes_to_slash() -> None:
    record = decode(header(wire.EV_OPEN) + struct.pack("<QII", 0, 0, 1))
    assert isinstance(record, wire.OpenRecord) and record.path == "/"


def conn(kind: int, family: int, port: int, proto: int, addr: bytes, ret: int = 0) -> bytes:
    return header(kind) + struct.pack("<HHHHiI16s", family, port, proto, 0, ret, 0, addr)


def test_connect_ipv4_and_ipv6() -> None:
    v4 = decode(conn(wire.EV_CONNECT, 2, 443, 6, bytes([10, 0, 0, 7]) + b"\0" * 12, ret=-115))
    assert isinstance(v4, wire.ConnRecord)
    assert (v4.kind, v4.family, v4.address, v4.port, v4.protocol, v4.ret) == (
        "connect",
        "ipv4",
        "10.0.0.7",
        443,
        "tcp",
        -115,
    )
    v6 = decode(conn(wire.EV_ACCEPT, 10, 8080, 6, bytes.fromhex("20010db8000000000000000000000001")))
    assert isinstance(v6, wire.ConnRecord)
    assert (v6.kind, v6.family, v6.address, v6.port) == ("accept", "ipv6", "2001:db8::1", 8080)


def test_ipv4_mapped_ipv6_peer_is_reported_as_ipv4() -> None:
    mapped = bytes(10) + b"\xff\xff" + bytes([192, 168, 1, 9])
    record = decode(conn(wire.EV_ACCEPT, 10, 80, 6, mapped))
    assert isinstance(record, wire.ConnRecord)
    assert (record.family, record.address) == ("ipv4", "192.168.1.9")


def test_udp_connect() -> None:
    record = decode(conn(wire.EV_CONNECT, 2, 53, 17, bytes([127, 0, 0, 53]) + bytes(12)))
    assert isinstance(record, wire.ConnRecord) and record.protocol == "udp"


def test_dns_sample_carries_only_the_captured_bytes() -> None:
    payload = b"\x12\x34" + b"x" * 40
    body = struct.pack("<HHB3xI16s", 2, 53, 0, len(payload), bytes([127, 0, 0, 1]) + bytes(12))
    record = decode(header(wire.EV_DNS) + body + payload + bytes(512 - len(payload)))
    assert isinstance(record, wire.DnsRecord)
    assert (record.response, record.port, record.address, record.payload) == (False, 53, "127.0.0.1", payload)


def test_capability_sample() -> None:
    record = decode(header(wire.EV_CAP) + struct.pack("<ii", 12, -1))
    assert isinstance(record, wire.CapRecord) and (record.cap, record.ret) == (12, -1)


@pytest.mark.parametrize(
    "sample",
    [b"", b"\x01\x00", header(99), header(wire.EV_EXEC) + b"\0" * 10, header(wire.EV_CONNECT)],
)
def test_garbage_raises_wire_error(sample: bytes) -> None:
    with pytest.raises(WireError):
        decode(sample)


def test_connection_with_unknown_protocol_is_rejected() -> None:
    with pytest.raises(WireError):
        decode(conn(wire.EV_CONNECT, 2, 1, 132, bytes(16)))  # SCTP is outside the contract


# ---------------------------------------------------------------- layout vs BTF


def _btf_structs(obj: Path) -> dict[str, tuple[int, dict[str, int]]]:
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    text = subprocess.run([bpftool, "btf", "dump", "file", str(obj)], capture_output=True, text=True, check=True).stdout
    structs: dict[str, tuple[int, dict[str, int]]] = {}
    current: dict[str, int] | None = None
    for line in text.splitlines():
        head = re.match(r"\[\d+\] STRUCT '(\w+)' size=(\d+)", line)
        if head:
            current = {}
            structs[head.group(1)] = (int(head.group(2)), current)
            continue
        member = re.match(r"\s+'(\w+)' type_id=\d+ bits_offset=(\d+)", line)
        if member and current is not None:
            current[member.group(1)] = int(member.group(2)) // 8
        elif not line.startswith("\t"):
            current = None
    return structs


@pytest.fixture(scope="module")
def built_object() -> Path:
    from sensor.build import BuildError, ensure_built

    try:
        return ensure_built()
    except BuildError as exc:
        pytest.skip(f"cannot build the BPF object here: {exc}")


def test_python_layouts_match_the_bpf_object(built_object: Path) -> None:
    structs = _btf_structs(built_object)
    header_size = struct.calcsize("<" + "".join(f for _, f in FIELDS["event_header"]))
    size, members = structs["event_header"]
    assert size == header_size
    for name, fields in FIELDS.items():
        if name not in structs:
            continue  # events built on the stack only may not be described in BTF
        size, members = structs[name]
        base = 0 if name == "event_header" else header_size
        if name != "event_header":
            assert members["h"] == 0
        offset = base
        for member, fmt in fields:
            assert members[member] == offset, f"{name}.{member}"
            offset += struct.calcsize("<" + fmt)
        assert offset <= size
    for required in ("exec_event", "open_event", "dns_event"):
        assert required in structs
