"""Decode the raw samples the BPF programs emit. Pure: bytes in, records out.

The layouts mirror the structs in sensor/bpf/runward.bpf.c; the numeric limits are read
from sensor/bpf/runward.h so a size changed there is picked up here.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_HEADER_FILE = Path(__file__).resolve().parent / "bpf" / "runward.h"


def _read_defines(path: Path) -> dict[str, int]:
    defines: dict[str, int] = {}
    for match in re.finditer(r"^#define\s+(RW_\w+)\s+(\d+)\b", path.read_text(), re.MULTILINE):
        defines[match.group(1)] = int(match.group(2))
    return defines


C = _read_defines(_HEADER_FILE)

EV_EXEC = C["RW_EV_EXEC"]
EV_EXIT = C["RW_EV_EXIT"]
EV_OPEN = C["RW_EV_OPEN"]
EV_CONNECT = C["RW_EV_CONNECT"]
EV_ACCEPT = C["RW_EV_ACCEPT"]
EV_DNS = C["RW_EV_DNS"]
EV_CAP = C["RW_EV_CAP"]

# Member name -> struct format, in C declaration order. The Structs below are built from
# these lists, and tests/sensor compares the offsets with the BTF of the built object.
FIELDS: dict[str, list[tuple[str, str]]] = {
    "event_header": [
        ("type", "I"),
        ("pid", "I"),
        ("tid", "I"),
        ("losses", "I"),
        ("cgroup_id", "Q"),
        ("ts_ns", "Q"),
        ("comm", f"{C['RW_COMM_LEN']}s"),
    ],
    "exec_event": [
        ("ppid", "I"),
        ("args_len", "I"),
        ("parent_comm", f"{C['RW_COMM_LEN']}s"),
        ("filename", f"{C['RW_FILENAME_LEN']}s"),
        ("args", f"{C['RW_ARGS_LEN']}s"),
    ],
    "exit_event": [("exit_code", "i"), ("_pad", "I")],
    "open_event": [("flags", "Q"), ("path_len", "I"), ("path_flags", "I")],  # then path[path_len]
    "conn_event": [
        ("family", "H"),
        ("port", "H"),
        ("protocol", "H"),
        ("_pad", "H"),
        ("ret", "i"),
        ("_pad2", "I"),
        ("addr", "16s"),
    ],
    "dns_event": [
        ("family", "H"),
        ("port", "H"),
        ("response", "B"),
        ("_pad", "3s"),
        ("len", "I"),
        ("addr", "16s"),
    ],  # then payload[len]
    "cap_event": [("cap", "i"), ("ret", "i")],
}


def _layout(name: str) -> struct.Struct:
    # '<' means no implicit alignment: the C structs carry explicit padding members.
    return struct.Struct("<" + "".join(fmt for _, fmt in FIELDS[name]))


_HEADER = _layout("event_header")
_EXEC = _layout("exec_event")
_EXIT = _layout("exit_event")
_OPEN = _layout("open_event")
_CONN = _layout("conn_event")
_DNS = _layout("dns_event")
_CAP = _layout("cap_event")

AF_INET = 2
AF_INET6 = 10
IPPROTO_TCP = 6
IPPROTO_UDP = 17


class WireError(ValueError):
    """A sample that does not match any known layout: a sensor/BPF version mismatch."""


@dataclass(frozen=True)
class Header:
    type: int
    pid: int
    tid: int
    losses: int
    cgroup_id: int
    ts_ns: int
    comm: str


@dataclass(frozen=True)
class ExecRecord:
    header: Header
    binary: str
    argv: list[str]
    argv_truncated: bool
    ppid: int
    parent_comm: str


@dataclass(frozen=True)
class ExitRecord:
    header: Header
    status: int

    @property
    def exit_code(self) -> int:
        """Like subprocess.returncode: the exit status, or minus the killing signal."""
        signal = self.status & 0x7F
        return -signal if signal else (self.status >> 8) & 0xFF


@dataclass(frozen=True)
class OpenRecord:
    header: Header
    path: str
    flags: int
    complete: bool


@dataclass(frozen=True)
class ConnRecord:
    header: Header
    kind: Literal["connect", "accept"]
    family: Literal["ipv4", "ipv6"]
    address: str
    port: int
    protocol: Literal["tcp", "udp"]
    ret: int


@dataclass(frozen=True)
class DnsRecord:
    header: Header
    response: bool
    family: int
    address: str
    port: int
    length: int
    payload: bytes


@dataclass(frozen=True)
class CapRecord:
    header: Header
    cap: int
    ret: int


KernelRecord = ExecRecord | ExitRecord | OpenRecord | ConnRecord | DnsRecord | CapRecord


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def split_argv(raw: bytes) -> list[str]:
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return [part.decode(errors="replace") for part in parts]


def join_leaf_first(raw: bytes, complete: bool) -> str:
    """Turn the leaf-first component list of a path walk into a path string.

    An incomplete walk (too deep or truncated) is marked with a leading '...' so that a
    partial path is never mistaken for an absolute one.
    """
    parts = [p.decode(errors="replace") for p in raw.split(b"\0") if p]
    parts.reverse()
    joined = "/".join(parts)
    return "/" + joined if complete else ".../" + joined


def format_address(family: int, raw: bytes) -> tuple[Literal["ipv4", "ipv6"], str]:
    """Printable address; IPv4-mapped IPv6 addresses are reported as the IPv4 peer they are."""
    if family == AF_INET:
        return "ipv4", str(ipaddress.IPv4Address(raw[:4]))
    v6 = ipaddress.IPv6Address(raw[:16])
    if v6.ipv4_mapped is not None:
        return "ipv4", str(v6.ipv4_mapped)
    return "ipv6", str(v6)


def decode_header(data: bytes) -> Header:
    if len(data) < _HEADER.size:
        raise WireError(f"sample of {len(data)} bytes is shorter than the {_HEADER.size}-byte header")
    kind, pid, tid, losses, cgroup_id, ts_ns, comm = _HEADER.unpack_from(data)
    return Header(kind, pid, tid, losses, cgroup_id, ts_ns, _cstr(comm))


def _need(data: bytes, layout: struct.Struct, what: str) -> None:
    if len(data) < _HEADER.size + layout.size:
        raise WireError(f"{what} sample of {len(data)} bytes is too short")


def decode(data: bytes) -> KernelRecord:
    """Decode one sample (trailing padding is ignored)."""
    h = decode_header(data)
    off = _HEADER.size
    if h.type == EV_EXEC:
        _need(data, _EXEC, "exec")
        ppid, args_len, parent_comm, filename, args = _EXEC.unpack_from(data, off)
        args_len = min(args_len, len(args))
        raw_args = args[:args_len]
        truncated = args_len == C["RW_ARGS_LEN"] and not raw_args.endswith(b"\0")
        return ExecRecord(h, _cstr(filename), split_argv(raw_args), truncated, ppid, _cstr(parent_comm))
    if h.type == EV_EXIT:
        _need(data, _EXIT, "exit")
        status, _ = _EXIT.unpack_from(data, off)
        return ExitRecord(h, status)
    if h.type == EV_OPEN:
        _need(data, _OPEN, "open")
        flags, path_len, path_flags = _OPEN.unpack_from(data, off)
        start = off + _OPEN.size
        raw = data[start : start + path_len]
        complete = bool(path_flags & C["RW_PATH_COMPLETE"]) and not path_flags & C["RW_PATH_TRUNCATED"]
        return OpenRecord(h, join_leaf_first(raw, complete), flags, complete)
    if h.type in (EV_CONNECT, EV_ACCEPT):
        _need(data, _CONN, "connection")
        family, port, protocol, _, ret, _, addr = _CONN.unpack_from(data, off)
        if family not in (AF_INET, AF_INET6) or protocol not in (IPPROTO_TCP, IPPROTO_UDP):
            raise WireError(f"connection sample with family {family} protocol {protocol}")
        fam, address = format_address(family, addr)
        return ConnRecord(
            h,
            "connect" if h.type == EV_CONNECT else "accept",
            fam,
            address,
            port,
            "tcp" if protocol == IPPROTO_TCP else "udp",
            ret,
        )
    if h.type == EV_DNS:
        _need(data, _DNS, "dns")
        family, port, response, _, length, addr = _DNS.unpack_from(data, off)
        start = off + _DNS.size
        payload = data[start : start + min(length, C["RW_DNS_LEN"])]
        address = format_address(family, addr)[1] if family in (AF_INET, AF_INET6) else ""
        return DnsRecord(h, bool(response), family, address, port, length, payload)
    if h.type == EV_CAP:
        _need(data, _CAP, "capability")
        cap, ret = _CAP.unpack_from(data, off)
        return CapRecord(h, cap, ret)
    raise WireError(f"unknown event type {h.type}")
