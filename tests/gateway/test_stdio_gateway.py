"""The stdio gateway between the official MCP client and real MCP servers, recording to Kafka."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client

from edges.gateway.session import REFUSED
from runward.core.contracts import RawLlmEvent
from runward.core.topics import RAW_LLM
from tests.kafka_reading import read_records

REPO = Path(__file__).resolve().parents[2]
TIME_SERVER = [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]
LATE_SERVER = [sys.executable, str(Path(__file__).with_name("late_tools_server.py"))]


def gateway(kafka: str, deployment: str, server_name: str, server: list[str], *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        cwd=str(REPO),
        args=[
            "-m",
            "edges.gateway",
            "--deployment",
            deployment,
            "--server-name",
            server_name,
            "--kafka",
            kafka,
            *extra,
            "--",
            *server,
        ],
    )


def recorded(kafka: str, deployment: str, want: int) -> list[RawLlmEvent]:
    records = read_records(kafka, RAW_LLM.name, lambda v: v["attribution"]["deployment"] == deployment, want)
    assert {key for key, _ in records} <= {deployment}  # keyed by the agent's Deployment
    return sorted((RawLlmEvent.model_validate(v) for _, v in records), key=lambda e: e.ts)


@asynccontextmanager
async def connect(params: StdioServerParameters) -> AsyncIterator[ClientSession]:
    with anyio.fail_after(30):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


@pytest.fixture
def deployment() -> str:
    return f"agents/gw-{uuid.uuid4().hex[:8]}"


def test_observe_mode_records_initialize_list_and_calls(kafka_bootstrap: str, deployment: str) -> None:
    async def agent() -> tuple[list[str], str]:
        async with connect(gateway(kafka_bootstrap, deployment, "time", TIME_SERVER)) as session:
            tools = [t.name for t in (await session.list_tools()).tools]
            result = await session.call_tool("get_current_time", {"timezone": "Europe/Paris"})
            return tools, result.content[0].text  # type: ignore[union-attr]

    tools, text = anyio.run(agent)
    assert sorted(tools) == ["convert_time", "get_current_time"] and "Europe/Paris" in text
    events = recorded(kafka_bootstrap, deployment, want=3)
    assert [e.operation for e in events] == ["initialize", "tools_list", "execute_tool"]
    assert {e.mcp_server for e in events} == {"time"}
    assert events[1].tools == ["convert_time", "get_current_time"]
    call = events[2]
    assert call.tool_name == "get_current_time" and call.tool_arguments == {"timezone": "Europe/Paris"}
    assert "Europe/Paris" in call.output_messages[-1]
    # observe mode with no allowlist: forwarded, and the record says enforce would refuse it
    assert call.output_messages[0].startswith("[runward] not allowed, observed only")


def test_enforce_mode_refuses_disallowed_calls_and_lets_allowed_ones_through(
    kafka_bootstrap: str, deployment: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("mode: enforce\nservers:\n  time:\n    allow: [get_current_time]\n")

    async def agent() -> tuple[str, MCPError]:
        async with (
            stdio_client(gateway(kafka_bootstrap, deployment, "time", TIME_SERVER, "--policy", str(policy))) as (r, w),
            ClientSession(r, w) as session,
        ):
            await session.initialize()
            allowed = await session.call_tool("get_current_time", {"timezone": "Asia/Tokyo"})
            with pytest.raises(MCPError) as refused:
                await session.call_tool(
                    "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
                )
            return allowed.content[0].text, refused.value  # type: ignore[union-attr]

    text, error = anyio.run(agent)
    assert "Asia/Tokyo" in text
    assert error.error.code == REFUSED and "convert_time" in error.error.message
    # initialize, the client SDK's own tools/list before its first call, and both calls
    events = recorded(kafka_bootstrap, deployment, want=4)
    calls = {e.tool_name: e for e in events if e.operation == "execute_tool"}
    assert calls["get_current_time"].output_messages and "[runward]" not in calls["get_current_time"].output_messages[0]
    assert calls["convert_time"].output_messages[0].startswith("[runward] refused (mode enforce)")


def test_tools_registered_after_startup_are_recorded_without_the_agent_relisting(
    kafka_bootstrap: str, deployment: str
) -> None:
    async def agent() -> None:
        async with connect(gateway(kafka_bootstrap, deployment, "ops", LATE_SERVER)) as session:
            await session.list_tools()
            await session.call_tool("enable_admin", {})
            await anyio.sleep(0.5)  # the gateway's own re-list happens in the background

    anyio.run(agent)
    events = recorded(kafka_bootstrap, deployment, want=4)
    lists = [e.tools for e in events if e.operation == "tools_list"]
    assert lists == [["enable_admin", "get_status"], ["delete_records", "enable_admin", "get_status"]]
