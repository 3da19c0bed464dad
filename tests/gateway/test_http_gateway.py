"""The streamable-HTTP gateway between the official MCP client and real servers over HTTP:
mcp-server-time's own server served with the SDK's streamable-HTTP transport."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import pytest
import uvicorn
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp_server_time.server import create_server as create_time_server

from edges.gateway.policy import ServerRule, ToolPolicy
from edges.gateway.session import REFUSED, AgentIdentity, GatewaySession
from edges.gateway.sink import KafkaSink, ListSink
from edges.gateway.streamable_http import HttpGateway
from runward.control.broker import free_port
from runward.core.contracts import RawLlmEvent
from runward.core.topics import RAW_LLM
from tests.gateway.late_tools_server import create_server as create_late_server
from tests.kafka_reading import read_records


@contextmanager
def serving(app: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def gateway_in_front(upstream_app: Any, policy: ToolPolicy, sink: Any, deployment: str) -> Iterator[str]:
    with serving(upstream_app) as upstream:
        agent = AgentIdentity(deployment, "agent-pod")
        gateway = HttpGateway(f"{upstream}/mcp", lambda: GatewaySession(agent, policy, server_name="time"), sink)
        with serving(gateway.app()) as url:
            yield f"{url}/mcp"


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[ClientSession]:
    with anyio.fail_after(30):
        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


@pytest.mark.parametrize("json_response", [False, True], ids=["sse", "json"])
def test_enforced_calls_over_streamable_http(json_response: bool) -> None:
    sink = ListSink()
    policy = ToolPolicy(mode="enforce", servers={"time": ServerRule(allow=["get_current_time"])})
    app = create_time_server("UTC").streamable_http_app(json_response=json_response)

    async def agent(url: str) -> tuple[list[str], str, MCPError]:
        async with connect(url) as session:
            tools = [t.name for t in (await session.list_tools()).tools]
            allowed = await session.call_tool("get_current_time", {"timezone": "America/New_York"})
            with pytest.raises(MCPError) as refused:
                await session.call_tool(
                    "convert_time", {"source_timezone": "UTC", "time": "09:30", "target_timezone": "Asia/Tokyo"}
                )
            return tools, allowed.content[0].text, refused.value  # type: ignore[union-attr]

    with gateway_in_front(app, policy, sink, "agents/http-agent") as url:
        tools, text, error = anyio.run(agent, url)
    # Enforce hides what it would refuse from the agent; the record keeps what the server offers.
    assert tools == ["get_current_time"] and "America/New_York" in text
    assert error.error.code == REFUSED
    ops = [(e.operation, e.tool_name) for e in sink.events]
    assert ops[:2] == [("initialize", None), ("tools_list", None)]
    assert sink.events[1].tools == ["convert_time", "get_current_time"]
    assert set(ops[2:]) == {("execute_tool", "get_current_time"), ("execute_tool", "convert_time")}
    refused = next(e for e in sink.events if e.tool_name == "convert_time")
    assert refused.output_messages[0].startswith("[runward] refused") and refused.refused


def test_late_tools_over_http_reach_kafka(kafka_bootstrap: str) -> None:
    deployment = f"agents/http-{uuid.uuid4().hex[:8]}"
    sink = KafkaSink(kafka_bootstrap)

    async def agent(url: str) -> None:
        async with connect(url) as session:
            await session.list_tools()
            await session.call_tool("enable_admin", {})
            await anyio.sleep(0.5)  # the gateway re-lists on its own POST

    try:
        with gateway_in_front(create_late_server().streamable_http_app(), ToolPolicy(), sink, deployment) as url:
            anyio.run(agent, url)
    finally:
        assert sink.close() == 0
    records = read_records(
        kafka_bootstrap, RAW_LLM.name, lambda v: v["attribution"]["deployment"] == deployment, want=4
    )
    events = [RawLlmEvent.model_validate(v) for _, v in records]
    lists = sorted((e.tools for e in events if e.operation == "tools_list"), key=len)
    assert lists == [["enable_admin", "get_status"], ["delete_records", "enable_admin", "get_status"]]
