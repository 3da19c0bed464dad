"""One MCP client<->server session at the JSON-RPC message level, independent of transport.

Each message goes in through `from_client` or `from_server`; what comes out is what the
transport must forward or inject, and the RawLlmEvents to publish. Keeping this pure is what
lets stdio and streamable HTTP share one policy and one recording.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edges.gateway.policy import ToolPolicy
from edges.intake.config import SourceConfig
from edges.intake.content import apply_content_policy
from runward.core.contracts import Attribution, RawLlmEvent, utcnow

JsonRpc = dict[str, Any]

# JSON-RPC reserves -32000..-32099 for implementation-defined server errors.
REFUSED = -32001
GATEWAY_ID_PREFIX = "runward-gateway-"
NOTE = "[runward]"


@dataclass
class Outcome:
    """What the transport does with one incoming message.

    From `from_server`, `to_server` holds only the gateway's own requests (a re-list after
    a tools change); a transport without a shared channel (HTTP) sends them on their own.
    """

    to_server: list[JsonRpc] = field(default_factory=list)
    to_client: list[JsonRpc] = field(default_factory=list)
    events: list[RawLlmEvent] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.to_server += other.to_server
        self.to_client += other.to_client
        self.events += other.events


@dataclass(frozen=True)
class AgentIdentity:
    deployment: str
    pod: str | None = None

    def attribution(self) -> Attribution:
        return Attribution(deployment=self.deployment, namespace=self.deployment.partition("/")[0], pod=self.pod)


@dataclass
class _Pending:
    method: str
    params: dict[str, Any]
    ts: datetime
    note: str | None = None


class GatewaySession:
    def __init__(
        self,
        agent: AgentIdentity,
        policy: ToolPolicy,
        config: SourceConfig | None = None,
        server_name: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.agent = agent
        self.policy = policy
        self.config = config or SourceConfig()
        self.configured_name = server_name
        self.server_info: dict[str, Any] = {}
        self.protocol_version: str | None = None
        self.clock = clock
        self._uid = uuid.uuid4().hex[:12]
        self._pending: dict[str, _Pending] = {}
        self._own: set[str] = set()
        self._ids = itertools.count(1)
        self._events = itertools.count(1)
        self._listing: dict[str, str] = {}  # tool name -> description, across pages

    @property
    def server(self) -> str:
        """The name policies and the AI-BOM use: the configured one (the key in the agent's
        MCP configuration), else what the server calls itself."""
        return self.configured_name or str(self.server_info.get("name") or "unknown")

    def awaiting(self, request_id: Any) -> bool:
        """Whether the gateway still waits for the answer to one of its own requests."""
        return _key(request_id) in self._own

    # --- client -> server ----------------------------------------------------------------------

    def from_client(self, message: Any) -> Outcome:
        if isinstance(message, list):  # JSON-RPC batch (MCP 2025-03-26)
            out = Outcome()
            for item in message:
                out.extend(self.from_client(item))
            return out
        if not _is_request(message):
            return Outcome(to_server=[message])  # notifications and answers to server requests
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        pending = _Pending(str(message["method"]), params, self.clock())
        if pending.method == "tools/call":
            tool = str(params.get("name", ""))
            decision = self.policy.decide(self.server, tool)
            if not decision.allowed and self.policy.mode == "enforce":
                return self._refuse(message, pending, tool, decision.reason)
            if not decision.allowed:
                pending.note = f"{NOTE} not allowed, observed only (mode observe): {decision.reason}"
        self._pending[_key(message["id"])] = pending
        return Outcome(to_server=[message])

    def _refuse(self, message: JsonRpc, pending: _Pending, tool: str, reason: str) -> Outcome:
        error = {
            "code": REFUSED,
            "message": f"Refused by the Runward tool gateway: {reason}",
            "data": {"server": self.server, "tool": tool, "mode": self.policy.mode},
        }
        event = self._event(
            "execute_tool",
            pending,
            tool_name=tool,
            tool_call_id=_id_text(message["id"]),
            tool_arguments=_arguments(pending.params),
            notes=[f"{NOTE} refused (mode enforce): {reason}"],
        )
        return Outcome(to_client=[{"jsonrpc": "2.0", "id": message["id"], "error": error}], events=[event])

    # --- server -> client ----------------------------------------------------------------------

    def from_server(self, message: Any) -> Outcome:
        if isinstance(message, list):
            out = Outcome()
            for item in message:
                out.extend(self.from_server(item))
            return out
        if not isinstance(message, dict):
            return Outcome(to_client=[message])
        if _is_response(message):
            key = _key(message.get("id"))
            if key in self._own:
                self._own.discard(key)
                return Outcome(events=self._on_tools_list(message, cursor=None, ts=self.clock()))
            pending = self._pending.pop(key, None)
            out = Outcome(to_client=[message])
            if pending is not None:
                out.events = self._on_response(pending, message)
            return out
        if message.get("method") == "notifications/tools/list_changed":
            # Re-list ourselves: the agent may never ask, and the new tools are what the AI-BOM needs.
            request = {
                "jsonrpc": "2.0",
                "id": f"{GATEWAY_ID_PREFIX}{self._uid}-{next(self._ids)}",
                "method": "tools/list",
                "params": {},
            }
            self._own.add(_key(request["id"]))
            return Outcome(to_client=[message], to_server=[request])
        return Outcome(to_client=[message])

    def _on_response(self, pending: _Pending, message: JsonRpc) -> list[RawLlmEvent]:
        result: dict[str, Any] = message["result"] if isinstance(message.get("result"), dict) else {}
        error: dict[str, Any] | None = message["error"] if isinstance(message.get("error"), dict) else None
        if pending.method == "initialize":
            if result:
                self.server_info = dict(result.get("serverInfo") or {})
                self.protocol_version = result.get("protocolVersion")
            note = (
                f"{NOTE} error {error.get('code')}: {error.get('message')}"
                if error
                else f"{NOTE} server {self.server_info.get('name')} {self.server_info.get('version', '')} "
                f"protocol {self.protocol_version}".rstrip()
            )
            return [self._event("initialize", pending, notes=[note])]
        if pending.method == "tools/list":
            return self._on_tools_list(message, cursor=pending.params.get("cursor"), ts=pending.ts)
        if pending.method == "tools/call":
            notes = [pending.note] if pending.note else []
            if error:
                notes.append(f"{NOTE} error {error.get('code')}: {error.get('message')}")
            elif result.get("isError"):
                notes.append(f"{NOTE} tool returned isError")
            return [
                self._event(
                    "execute_tool",
                    pending,
                    tool_name=str(pending.params.get("name", "")),
                    tool_arguments=_arguments(pending.params),
                    output=_result_text(result),
                    tool_call_id=_id_text(message.get("id")),
                    notes=notes,
                )
            ]
        return []

    def _on_tools_list(self, message: JsonRpc, cursor: Any, ts: datetime) -> list[RawLlmEvent]:
        result = message.get("result")
        if not isinstance(result, dict):
            return []
        if cursor is None:
            self._listing = {}
        for tool in result.get("tools") or []:
            if isinstance(tool, dict) and tool.get("name"):
                self._listing[str(tool["name"])] = str(tool.get("description") or "")
        if result.get("nextCursor"):
            return []  # the list is whole only on its last page
        listing, self._listing = self._listing, {}
        # Descriptions go to the model as instructions (the tool-poisoning vector), so they are
        # recorded as input for ingest's prompt-injection checks.
        described = [f"tool {name}: {text}" for name, text in sorted(listing.items()) if text]
        return [
            self._event("tools_list", _Pending("tools/list", {}, ts), tools=sorted(listing), input_messages=described)
        ]

    # --- records -------------------------------------------------------------------------------

    def _event(
        self,
        operation: Any,
        pending: _Pending,
        *,
        notes: list[str] | None = None,
        output: list[str] | None = None,
        **fields: Any,
    ) -> RawLlmEvent:
        event = RawLlmEvent(
            event_id=f"mcp-gateway:{self._uid}:{next(self._events)}",
            ts=pending.ts,
            attribution=self.agent.attribution(),
            operation=operation,
            mcp_server=self.server,
            output_messages=output or [],
            **fields,
        )
        return apply_content_policy(event, self.config, notes=notes or [])


def _is_request(message: Any) -> bool:
    return isinstance(message, dict) and "method" in message and "id" in message


def _is_response(message: JsonRpc) -> bool:
    return "id" in message and "method" not in message and ("result" in message or "error" in message)


def _key(request_id: Any) -> str:
    return json.dumps(request_id)


def _id_text(request_id: Any) -> str | None:
    return None if request_id is None else str(request_id)


def _arguments(params: dict[str, Any]) -> dict[str, Any] | None:
    arguments = params.get("arguments")
    return arguments if isinstance(arguments, dict) else None


def _result_text(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for item in result.get("content") or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "text":
            lines.append(str(item.get("text", "")))
        elif kind == "resource":
            resource = item.get("resource") or {}
            lines.append(str(resource.get("text") or f"[resource {resource.get('uri')}]"))
        else:
            lines.append(f"[{kind}]")
    if not lines and result.get("structuredContent") is not None:
        lines.append(json.dumps(result["structuredContent"], sort_keys=True))
    return lines
