"""The gateway `runward run --mcp NAME=COMMAND` starts: streamable HTTP in front of a stdio MCP
server it spawns (the real mcp-server-time), reached by the official MCP SDK client at the URL
it publishes as RUNWARD_MCP_<NAME>_URL. Observe records; an enforce bundle refuses."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client

from edges.gateway.hosted import GatewayError, HostedGateways, McpServer, env_name
from edges.gateway.sink import ListSink
from runward.core.contracts import EnforcementMode
from tests.gateway.test_bundle_modes import CONVERT, PARIS, TOKYO, time_bundle

D = "agents/hosted"
SERVER = f"time={Path(sys.executable).parent / 'mcp-server-time'}"


def use(url: str) -> dict[str, Any]:
    """What an agent using the SDK sees: the tools listed, and each call's result or error."""

    async def agent() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            seen["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
            for label, tool, arguments in (
                ("paris", "get_current_time", PARIS),
                ("tokyo", "get_current_time", TOKYO),
                ("convert", "convert_time", CONVERT),
            ):
                try:
                    result = await session.call_tool(tool, arguments)
                    seen[label] = "error" if result.is_error else "ok"
                except MCPError as exc:
                    seen[label] = f"refused: {exc}"
        return seen

    return anyio.run(agent)


def test_the_variable_names_the_server() -> None:
    assert env_name("time") == "RUNWARD_MCP_TIME_URL"
    assert env_name("my-docs.v2") == "RUNWARD_MCP_MY_DOCS_V2_URL"
    assert McpServer.parse("time=uvx mcp-server-time --local-timezone UTC").command == (
        "uvx",
        "mcp-server-time",
        "--local-timezone",
        "UTC",
    )
    for bad in ("time", "=cmd", "time=", "a b=cmd"):
        with pytest.raises(ValueError, match="NAME=COMMAND"):
            McpServer.parse(bad)


def test_observe_records_every_call_and_refuses_none() -> None:
    sink = ListSink()
    with HostedGateways([McpServer.parse(SERVER)], D, "127.0.0.1", sink) as gateways:
        (entry,) = gateways.env
        name, _, url = entry.partition("=")
        assert name == "RUNWARD_MCP_TIME_URL" and url.startswith("http://127.0.0.1:")
        seen = use(url)
    assert seen == {"tools": ["convert_time", "get_current_time"], "paris": "ok", "tokyo": "ok", "convert": "ok"}
    calls = [e for e in sink.events if e.operation == "execute_tool"]
    assert [(e.mcp_server, e.tool_name) for e in calls] == [
        ("time", "get_current_time"),
        ("time", "get_current_time"),
        ("time", "convert_time"),
    ]
    assert gateways.refusals == [] and not any(e.refused for e in calls)


def test_an_enforce_bundle_refuses_what_the_apd_did_not_see() -> None:
    sink = ListSink()
    bundle = time_bundle(D, EnforcementMode.ENFORCE)
    with HostedGateways([McpServer.parse(SERVER)], D, "127.0.0.1", sink, bundle) as gateways:
        seen = use(gateways.env[0].partition("=")[2])
    assert seen["tools"] == ["get_current_time"]  # enforce hides what it would refuse
    assert seen["paris"] == "ok"
    assert seen["tokyo"].startswith("refused: Refused by the Runward tool gateway: arguments of time/get_current_time")
    assert seen["convert"].startswith("refused: Refused by the Runward tool gateway: tool time/convert_time")
    assert [(r.tool, r.refused) for r in gateways.refusals] == [("get_current_time", True), ("convert_time", True)]
    assert "Asia/Tokyo" not in " ".join(r.reason for r in gateways.refusals)


def test_a_session_the_gateway_did_not_start_is_unknown_and_nothing_is_left_running() -> None:
    with HostedGateways([McpServer.parse(SERVER)], D, "127.0.0.1", ListSink()) as gateways:
        url = gateways.env[0].partition("=")[2]
        answer = httpx.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            headers={"mcp-session-id": "not-a-session", "accept": "application/json, text/event-stream"},
        )
        assert answer.status_code == 404
    with pytest.raises(httpx.ConnectError):
        httpx.post(url, json={}, timeout=2)


def test_a_server_that_is_not_there_is_an_error_before_anything_runs() -> None:
    with (
        pytest.raises(GatewayError, match="absolute path"),
        HostedGateways([McpServer.parse("time=no-such-mcp-server")], D, "127.0.0.1", ListSink()),
    ):
        pass
    with (
        pytest.raises(GatewayError, match="cannot listen on 192.0.2.1"),
        HostedGateways([McpServer.parse(SERVER)], D, "192.0.2.1", ListSink()),
    ):
        pass


def test_an_agent_cannot_open_server_processes_without_end() -> None:
    """Each session is a server process on the host, outside the jail: their number is bounded."""
    from edges.gateway.stdio_upstream import StdioUpstream

    upstream = StdioUpstream([SERVER.partition("=")[2]], max_sessions=2)
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }

    async def agent() -> list[tuple[int, str | None, str]]:
        seen: list[tuple[int, str | None, str]] = []
        transport = httpx.ASGITransport(app=upstream.app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://upstream", timeout=30) as client:
                for _ in range(3):
                    answer = await client.post("/mcp", json=init)
                    seen.append((answer.status_code, answer.headers.get("mcp-session-id"), answer.text))
                assert (await client.delete("/mcp", headers={"mcp-session-id": seen[0][1] or ""})).status_code == 200
                answer = await client.post("/mcp", json=init)  # a session ended: room for one more
                seen.append((answer.status_code, answer.headers.get("mcp-session-id"), answer.text))
        finally:
            await upstream.aclose()
        return seen

    seen = anyio.run(agent)
    assert [status for status, _, _ in seen] == [200, 200, 503, 200]
    assert "2 sessions are open" in seen[2][2] and seen[2][1] is None
    assert not upstream.servers
