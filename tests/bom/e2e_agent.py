"""A real Python agent for the AI-BOM end-to-end test (run under `runward run`).

It imports real packages, uses two MCP servers through the Runward gateway (mcp-server-time,
and a server that registers a tool after startup), then writes its own ground truth: every
module it has loaded, with the file it came from.

usage: e2e_agent.py OUT.json DEPLOYMENT KAFKA REPO
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx  # noqa: F401 - imported for real, so the AI-BOM must list it
import yaml
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

out, deployment, kafka, repo = sys.argv[1:5]


def through_gateway(name: str, *server: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        cwd=repo,
        env={"PYTHONPATH": repo, "PATH": "/usr/bin:/bin"},
        args=[
            "-m",
            "edges.gateway",
            "--deployment",
            deployment,
            "--server-name",
            name,
            "--kafka",
            kafka,
            "--",
            sys.executable,
            *server,
        ],
    )


async def main() -> None:
    time_server = through_gateway("time", "-m", "mcp_server_time", "--local-timezone", "UTC")
    async with stdio_client(time_server) as (r, w), ClientSession(r, w) as session:
        await session.initialize()
        await session.list_tools()
        await session.call_tool("get_current_time", {"timezone": "Europe/Paris"})
    ops_server = through_gateway("ops", f"{repo}/tests/gateway/late_tools_server.py")
    async with stdio_client(ops_server) as (r, w), ClientSession(r, w) as session:
        await session.initialize()
        await session.list_tools()
        await session.call_tool("enable_admin", {})
        await asyncio.sleep(1.0)  # the gateway re-lists after notifications/tools/list_changed


asyncio.run(main())
config = yaml.safe_load("agent: {ready: true}")
modules = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
with open(out, "w") as fh:
    json.dump({"modules": {k: v for k, v in modules.items() if v}, "config": config}, fh)
