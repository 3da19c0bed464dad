"""DNS message parsing: queries (what the workload asked) and answers (for connect names)."""

from __future__ import annotations

import struct

import pytest

from sensor.dnswire import Answer, Question, parse_answers, parse_query, qtype_name


def encode_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def query(name: str, qtype: int = 1, txid: int = 0x1234) -> bytes:
    return struct.pack(">HHHHHH", txid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack(">HH", qtype, 1)


def response(name: str, records: list[tuple[int, bytes, int]], rcode: int = 0) -> bytes:
    """records: (rtype, rdata, ttl); owners point back to the question name (0xC00C)."""
    msg = struct.pack(">HHHHHH", 0x1234, 0x8180 | rcode, 1, len(records), 0, 0)
    msg += encode_name(name) + struct.pack(">HH", 1, 1)
    for rtype, rdata, ttl in records:
        msg += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata
    return msg


def test_query_name_and_type() -> None:
    assert parse_query(query("API.OpenAI.com", 28)) == Question("api.openai.com", "AAAA")
    assert parse_query(query("x.example", 65)) == Question("x.example", "HTTPS")
    assert parse_query(query("x.example", 4242)) == Question("x.example", "TYPE4242")


def test_a_response_is_not_a_query() -> None:
    assert parse_query(response("a.example", [])) is None


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00" * 11,
        query("a.example")[:-3],  # cut inside the question
        struct.pack(">HHHHHH", 1, 0x0100, 0, 0, 0, 0),  # no question
        struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\x3f" + b"a" * 10,  # label runs past the end
        struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + b"\0\x01\0\x01",  # pointer loop
    ],
)
def test_malformed_queries_yield_none(payload: bytes) -> None:
    assert parse_query(payload) is None


def test_answers_map_addresses_to_the_question_name_through_cnames() -> None:
    cname_target = encode_name("edge.cdn.example")
    msg = response(
        "tools.agents.internal",
        [(5, cname_target, 30), (1, bytes([10, 1, 2, 3]), 20), (28, bytes(15) + b"\x01", 300)],
    )
    assert parse_answers(msg) == [
        Answer("tools.agents.internal", "10.1.2.3", 20),
        Answer("tools.agents.internal", "::1", 300),
    ]


def test_error_responses_and_queries_have_no_answers() -> None:
    assert parse_answers(response("nx.example", [(1, bytes(4), 1)], rcode=3)) == []
    assert parse_answers(query("a.example")) == []


def test_truncated_answer_section_keeps_what_parsed() -> None:
    msg = response("a.example", [(1, bytes([1, 1, 1, 1]), 5), (1, bytes([2, 2, 2, 2]), 5)])
    assert parse_answers(msg[:-3]) == [Answer("a.example", "1.1.1.1", 5)]


def test_qtype_names() -> None:
    assert qtype_name(1) == "A" and qtype_name(33) == "SRV"
