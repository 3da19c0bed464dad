"""Fail closed: what the gateway cannot read exactly is refused with a JSON-RPC error and
recorded, never forwarded to the MCP server, over stdio and streamable HTTP, in every mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp_server_time.server import create_server as create_time_server

from edges.gateway.policy import ServerRule, ToolPolicy
from edges.gateway.session import PARSE_ERROR, AgentIdentity, GatewaySession, Unparseable, parse_message
from edges.gateway.sink import ListSink
from edges.gateway.streamable_http import HttpGateway
from runward.core.topics import DEAD_LETTER, RAW_LLM
from tests.gateway.test_http_gateway import serving
from tests.kafka_reading import read_records

REPO = Path(__file__).resolve().parents[2]
TIME_SERVER = [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
CONVERT = b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"convert_time","arguments":'
# one invalid UTF-8 byte in an argument: the line Python's json could not read and used to forward
BAD_BYTE = CONVERT + b'{"source_timezone":"UTC","time":"12:00","target_timezone":"Asia/Tokyo\xff"}}}'
# "name" twice: parsers disagree on which one wins, so the gateway refuses to pick
DUPLICATE = b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_current_time","name":"convert_time",'
DUPLICATE += b'"arguments":{"source_timezone":"UTC","time":"12:00","target_timezone":"Asia/Tokyo"}}}'


class StdioGateway:
    def __init__(self, kafka: str, deployment: str, mode: str, tmp: Path) -> None:
        policy = tmp / "policy.yaml"
        policy.write_text(f"mode: {mode}\nservers:\n  time:\n    allow: [get_current_time]\n")
        argv = [sys.executable, "-m", "edges.gateway", "--deployment", deployment, "--server-name", "time"]
        self.proc = subprocess.Popen(
            [*argv, "--kafka", kafka, "--policy", str(policy), "--", *TIME_SERVER],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def send(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def until(self, request_id: int) -> list[dict[str, Any]]:
        """Every message read until the answer to `request_id` (inclusive)."""
        assert self.proc.stdout is not None
        seen = []
        while True:
            line = self.proc.stdout.readline()
            assert line, "gateway closed its stdout"
            seen.append(json.loads(line))
            if seen[-1].get("id") == request_id:
                return seen

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=15)


@pytest.mark.parametrize("mode", ["enforce", "observe"])
@pytest.mark.parametrize("line", [BAD_BYTE, DUPLICATE], ids=["invalid-utf8", "duplicate-name"])
def test_stdio_refuses_what_it_cannot_read_and_the_server_never_runs_it(
    kafka_bootstrap: str, tmp_path: Path, mode: str, line: bytes
) -> None:
    deployment = f"agents/fc-{uuid.uuid4().hex[:8]}"
    gw = StdioGateway(kafka_bootstrap, deployment, mode, tmp_path)
    try:
        gw.send(json.dumps(INIT).encode())
        assert "result" in gw.until(0)[-1]
        gw.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        gw.send(line)
        gw.send(
            b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_current_time",'
            b'"arguments":{"timezone":"Europe/Paris"}}}'
        )
        answers = gw.until(3)
    finally:
        gw.close()
    for_two = [a for a in answers if a.get("id") == 2]
    assert len(for_two) == 1 and for_two[0]["error"]["code"] == PARSE_ERROR, answers
    assert "Refused by the Runward tool gateway" in for_two[0]["error"]["message"]
    assert "Europe/Paris" in answers[-1]["result"]["content"][0]["text"]  # the session goes on
    # The server answered id 3 but never saw id 2: it was not forwarded.
    assert all("result" not in a for a in for_two)
    (dead,) = [
        v for _, v in read_records(kafka_bootstrap, DEAD_LETTER.name, lambda v: deployment in v["reason"], want=1)
    ]
    assert dead["stage"] == "mcp-gateway" and "unparseable" in dead["reason"]
    calls = read_records(
        kafka_bootstrap,
        RAW_LLM.name,
        lambda v: v["attribution"]["deployment"] == deployment and v["operation"] == "execute_tool",
        want=2,
    )
    refused = [v for _, v in calls if v["tool_call_id"] == "2"]
    assert refused and refused[0]["output_messages"][0].startswith("[runward] refused (fail closed")


def test_http_refuses_unparseable_and_malformed_calls_without_forwarding() -> None:
    sink = ListSink()
    policy = ToolPolicy(mode="observe", servers={"time": ServerRule(allow=["*"])})
    upstream_app = create_time_server("UTC").streamable_http_app(json_response=True)
    with serving(upstream_app) as upstream:
        agent = AgentIdentity("agents/http-fc", "pod")
        gateway = HttpGateway(f"{upstream}/mcp", lambda: GatewaySession(agent, policy, server_name="time"), sink)
        with serving(gateway.app()) as url:
            headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
            init = httpx.post(f"{url}/mcp", json=INIT, headers=headers, timeout=10)
            assert init.status_code == 200
            session = {**headers, "mcp-session-id": init.headers["mcp-session-id"]}
            session["mcp-protocol-version"] = "2025-06-18"
            httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
            for body, code in [
                (BAD_BYTE, PARSE_ERROR),
                (DUPLICATE, PARSE_ERROR),
                (b'{"jsonrpc":"2.0","method":"tools/call","params":{"name":"convert_time"}}', -32600),
                (b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":["convert_time"]}}', -32602),
                (b'{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"x","arguments":NaN}}', PARSE_ERROR),
                (b'"tools/call"', -32600),
                (b"[]", -32600),
            ]:
                reply = httpx.post(f"{url}/mcp", content=body, headers=session, timeout=10)
                assert reply.status_code in (200, 400), (body, reply.text)
                assert reply.json()["error"]["code"] == code, (body, reply.text)
            ok = httpx.post(
                f"{url}/mcp",
                json={
                    "jsonrpc": "2.0",
                    "id": 9,
                    "method": "tools/call",
                    "params": {"name": "get_current_time", "arguments": {"timezone": "UTC"}},
                },
                headers=session,
                timeout=10,
            )
            assert "result" in ok.json()
    assert len(sink.dead_letters) == 7
    refused_calls = [
        e for e in sink.events if e.operation == "execute_tool" and e.output_messages[0].startswith("[runward] refused")
    ]
    assert {e.tool_call_id for e in refused_calls} >= {"2", "7"}


@pytest.mark.parametrize(
    "raw",
    [b"\xff", b'{"a":1,"a":2}', b"NaN", b'{"x":Infinity}', b"[" * 100_000, b"\xed\xa0\x80"],
    ids=["byte", "dup", "nan", "inf", "deep", "surrogate-bytes"],
)
def test_strict_parser_refuses(raw: bytes) -> None:
    with pytest.raises(Unparseable):
        parse_message(raw)


def test_secrets_in_a_refused_line_are_redacted_in_the_dead_letter() -> None:
    session = GatewaySession(AgentIdentity("agents/a"), ToolPolicy(), server_name="time")
    line = b'{"id":1,"method":"tools/call","params":{"name":"x","arguments":{"k":"AKIAIOSFODNN7EXAMPLE\xff"}}}'
    out = session.refuse_unparseable(line, "invalid UTF-8 at byte 80")
    assert "AKIAIOSFODNN7EXAMPLE" not in out.dead_letters[0].payload
    assert out.to_client[0]["id"] == 1 and out.to_server == []


def test_well_formed_messages_still_pass_notifications_answers_and_null_params() -> None:
    session = GatewaySession(AgentIdentity("agents/a"), ToolPolicy(), server_name="time")
    for message in (
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": None},
        {"jsonrpc": "2.0", "id": "s1", "result": {}},  # the client answering a server request
    ):
        out = session.from_client(message)
        assert out.to_server == [message] and not out.dead_letters, message
    refused = session.from_client({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": None})
    assert refused.to_server == [] and refused.to_client[0]["error"]["code"] == -32602
