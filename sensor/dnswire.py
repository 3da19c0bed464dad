"""Parse DNS messages (RFC 1035) captured from UDP payloads. Pure and defensive: the
bytes come from whatever a workload sent, so every malformed input yields None or []."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

QTYPES: dict[int, str] = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    35: "NAPTR",
    64: "SVCB",
    65: "HTTPS",
    255: "ANY",
}
_MAX_POINTER_HOPS = 16


def qtype_name(qtype: int) -> str:
    return QTYPES.get(qtype, f"TYPE{qtype}")  # RFC 3597 spelling for unknown types


@dataclass(frozen=True)
class Question:
    name: str
    qtype: str


@dataclass(frozen=True)
class Answer:
    name: str
    address: str
    ttl: int


def _read_name(msg: bytes, off: int) -> tuple[str, int] | None:
    """Read a possibly compressed name; return it and the offset after it in the record."""
    labels: list[str] = []
    end: int | None = None
    hops = 0
    while True:
        if off >= len(msg):
            return None
        length = msg[off]
        if length == 0:
            off += 1
            break
        if length & 0xC0 == 0xC0:
            if off + 1 >= len(msg) or hops >= _MAX_POINTER_HOPS:
                return None
            if end is None:
                end = off + 2
            off = ((length & 0x3F) << 8) | msg[off + 1]
            hops += 1
            continue
        if length & 0xC0 or off + 1 + length > len(msg):
            return None
        labels.append(msg[off + 1 : off + 1 + length].decode("ascii", errors="replace"))
        off += 1 + length
    name = ".".join(labels).lower()
    if len(name) > 253:
        return None
    return name, end if end is not None else off


def parse_query(msg: bytes) -> Question | None:
    """The first question of a DNS query, or None if msg is not a well-formed query."""
    if len(msg) < 12:
        return None
    _, flags, qdcount = struct.unpack_from(">HHH", msg)
    if flags & 0x8000 or qdcount < 1:  # QR set: a response, not a query
        return None
    read = _read_name(msg, 12)
    if read is None:
        return None
    name, off = read
    if off + 4 > len(msg) or not name:
        return None
    qtype, _qclass = struct.unpack_from(">HH", msg, off)
    return Question(name, qtype_name(qtype))


def parse_answers(msg: bytes) -> list[Answer]:
    """A/AAAA answers of a response, each attributed to the *question* name so that a
    CNAME chain (api.example.com -> edge.cdn.net -> 1.2.3.4) maps the address back to
    the name the workload asked for."""
    if len(msg) < 12:
        return []
    _, flags, qdcount, ancount = struct.unpack_from(">HHHH", msg)
    if not flags & 0x8000 or flags & 0x000F:  # not a response, or RCODE != NOERROR
        return []
    off = 12
    question = ""
    for i in range(qdcount):
        read = _read_name(msg, off)
        if read is None:
            return []
        name, off = read
        if i == 0:
            question = name
        off += 4
    answers: list[Answer] = []
    for _ in range(ancount):
        read = _read_name(msg, off)
        if read is None or read[1] + 10 > len(msg):
            break
        _owner, off = read
        rtype, _rclass, ttl, rdlength = struct.unpack_from(">HHIH", msg, off)
        off += 10
        rdata = msg[off : off + rdlength]
        if len(rdata) != rdlength:
            break
        off += rdlength
        if rtype == 1 and rdlength == 4:
            answers.append(Answer(question, str(ipaddress.IPv4Address(rdata)), ttl))
        elif rtype == 28 and rdlength == 16:
            answers.append(Answer(question, str(ipaddress.IPv6Address(rdata)), ttl))
    return answers
