"""Enriched events as ingest emits them (see services/ingest/domain.py)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from runward.core.contracts import Behaviour, Egress, EnrichedEvent, File, LlmCall, SourceRef, Surface, ToolCall

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
SITE = "/usr/local/lib/python3.11/site-packages"
DEPLOYMENT = "agents/support-bot"
_offsets = itertools.count()

_SURFACES = {
    "file_open": Surface.FILE,
    "connect": Surface.NETWORK,
    "chat": Surface.INPUT,
    "execute_tool": Surface.TOOL,
    "tools_list": Surface.TOOL,
    "initialize": Surface.TOOL,
    "deployment_spec": Surface.DEPLOYMENT,
    "exec": Surface.PROCESS,
}


def event(
    kind: str,
    detail: dict[str, Any],
    at: float = 0.0,
    pod: str | None = "support-bot-7d4b9c5f6-x2x7q",
    behaviour: Behaviour | None = None,
    deployment: str = DEPLOYMENT,
) -> EnrichedEvent:
    offset = next(_offsets)
    return EnrichedEvent(
        event_id=f"e{offset}",
        ts=T0 + timedelta(seconds=at),
        deployment=deployment,
        namespace=deployment.partition("/")[0],
        pod=pod,
        surface=_SURFACES.get(kind, Surface.PROCESS),
        kind=kind,
        behaviour=behaviour,
        detail=detail,
        source=SourceRef(topic="runward.events.enriched", partition=0, offset=offset),
    )


def opened(path: str, at: float = 0.0, **detail: Any) -> EnrichedEvent:
    return event("file_open", {"path": path, "flags": 0, **detail}, at, behaviour=File(path=path))


def connected(host: str | None, address: str, port: int = 443, at: float = 0.0) -> EnrichedEvent:
    return event(
        "connect",
        {"address": address, "port": port, "protocol": "tcp", "dns_name": host, "family": "ipv4"},
        at,
        behaviour=Egress(host=host or address, port=port, protocol="tcp"),
    )


def chat(provider: str, requested: str | None, served: str | None, at: float = 0.0) -> EnrichedEvent:
    return event(
        "chat",
        {"operation": "chat", "provider": provider, "request_model": requested, "response_model": served},
        at,
        behaviour=LlmCall(provider=provider, model=served or requested or "unknown"),
    )


def tools_list(server: str, tools: list[str], at: float = 0.0) -> EnrichedEvent:
    return event("tools_list", {"operation": "tools_list", "mcp_server": server, "tools": tools}, at)


def tool_call(server: str, tool: str, at: float = 0.0) -> EnrichedEvent:
    return event(
        "execute_tool",
        {"operation": "execute_tool", "mcp_server": server, "tool_name": tool, "tools": []},
        at,
        behaviour=ToolCall(server=server, name=tool),
    )


def initialize(server: str, at: float = 0.0) -> EnrichedEvent:
    return event("initialize", {"operation": "initialize", "mcp_server": server, "tools": []}, at)
