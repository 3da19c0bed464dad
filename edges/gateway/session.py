"""One MCP client<->server session at the JSON-RPC message level, independent of transport.

Each message goes in through `from_client` or `from_server`; what comes out is what the
transport must forward or inject, and the RawLlmEvents to publish. Keeping this pure is what
lets stdio and streamable HTTP share one policy and one recording.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edges.gateway.bundle import BundleDecision, BundleSource, hidden_tools, judge
from edges.gateway.policy import ToolPolicy
from edges.intake.config import SourceConfig
from edges.intake.content import apply_content_policy
from runward.core.contracts import (
    Attribution,
    AuditEvidence,
    DeadLetter,
    EnforcementMode,
    EvidenceSource,
    RawLlmEvent,
    SourceRef,
    utcnow,
)
from runward.core.redaction import redact_text

JsonRpc = dict[str, Any]

# JSON-RPC reserves -32000..-32099 for implementation-defined server errors.
REFUSED = -32001
PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32602, -32603
DEAD_LETTER_STAGE = "mcp-gateway"
_PAYLOAD_KEPT = 4096
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
    dead_letters: list[DeadLetter] = field(default_factory=list)
    evidence: list[AuditEvidence] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.to_server += other.to_server
        self.to_client += other.to_client
        self.events += other.events
        self.dead_letters += other.dead_letters
        self.evidence += other.evidence


class Unparseable(ValueError):
    """A message the gateway cannot read exactly; the message says why (never the content)."""


def parse_message(raw: bytes | str) -> Any:
    """Strict JSON-RPC parsing: UTF-8 only, no duplicate keys, no NaN/Infinity.

    Strict because the gateway decides on its own reading of a message: anything another parser
    might read differently (a stray byte, a repeated "name") is refused, never passed on.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise Unparseable(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise Unparseable(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise Unparseable(str(exc) if isinstance(exc, ValueError) else "JSON nested too deeply") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate key {repeated[:64]!r} in a JSON object")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


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
        policy: ToolPolicy | None,
        config: SourceConfig | None = None,
        server_name: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        bundles: BundleSource | None = None,
    ) -> None:
        """`policy` is a hand-written allowlist (None: none); `bundles` the agent's policy bundle
        (None: no bundle, observe). Both apply, each at its own mode."""
        self.agent = agent
        self.policy = policy
        self.bundles = bundles
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
        self._refusals = itertools.count(0)
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
        if isinstance(message, list) and message:  # JSON-RPC batch (MCP 2025-03-26)
            out = Outcome()
            for item in message:
                out.extend(
                    self.from_client(item)
                    if not isinstance(item, list)
                    else self.refuse_malformed(item, "nested batch")
                )
            return out
        problem = _invalid(message)
        if problem is not None:
            return self.refuse_malformed(message, problem)
        if not _is_request(message):
            return Outcome(to_server=[message])  # notifications and answers to server requests
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        pending = _Pending(str(message["method"]), params, self.clock())
        out = Outcome(to_server=[message])
        if pending.method == "tools/call":
            refused = self._judge_call(message, pending, out)
            if refused is not None:
                return refused
        self._pending[_key(message["id"])] = pending
        return out

    def _judge_call(self, message: JsonRpc, pending: _Pending, out: Outcome) -> Outcome | None:
        """The hand-written allowlist, then the agent's bundle, on one tools/call: the refusal to
        answer with (enforce), else None after noting would-be refusals on `pending` and, in
        audit, adding their evidence to `out`."""
        tool = pending.params["name"]
        if self.policy is not None:
            decision = self.policy.decide(self.server, tool)
            if not decision.allowed and self.policy.mode == "enforce":
                return self._refuse(message, pending, tool, decision.reason, self.policy.mode)
            if not decision.allowed:
                pending.note = f"{NOTE} not allowed, observed only (mode observe): {decision.reason}"
        problem = self.bundles.problem if self.bundles is not None else None
        if problem is not None:
            return self._refuse(message, pending, tool, f"{problem}; retry shortly", "unknown")
        verdict = judge(self._bundle(), self.server, tool, _arguments(pending.params))
        if not verdict.allowed and verdict.mode is EnforcementMode.ENFORCE:
            return self._refuse(message, pending, tool, verdict.reason, verdict.mode.value)
        if not verdict.allowed:
            note = f"{NOTE} would be refused, {verdict.mode.value} only: {verdict.reason}"
            pending.note = f"{pending.note}; {note}" if pending.note else note
            if verdict.mode is EnforcementMode.AUDIT:
                out.evidence.append(self._evidence(message, pending, tool, verdict))
        return None

    def _bundle(self) -> Any:
        return self.bundles.current if self.bundles is not None else None

    def _evidence(self, message: JsonRpc, pending: _Pending, tool: str, verdict: BundleDecision) -> AuditEvidence:
        """A would-be refusal in audit mode, for the audit soak (never the arguments' values)."""
        action = f"{self.server}/{tool}"
        seed = f"{self.agent.deployment}|{self._uid}|{_key(message['id'])}|{action}"
        return AuditEvidence(
            evidence_id="gateway:" + hashlib.sha256(seed.encode()).hexdigest()[:24],
            deployment=self.agent.deployment,
            ts=pending.ts,
            source=EvidenceSource.GATEWAY,
            action=action,
            reason=verdict.reason,
            pod=self.agent.pod,
            bundle_revision=verdict.revision,
            detail={
                "mode": verdict.mode.value,
                "tool_call_id": _id_text(message["id"]),
                "arguments": sorted(name for name in (_arguments(pending.params) or {})),
            },
        )

    def _refuse(self, message: JsonRpc, pending: _Pending, tool: str, reason: str, mode: str) -> Outcome:
        error = {
            "code": REFUSED,
            "message": f"Refused by the Runward tool gateway: {reason}",
            "data": {"server": self.server, "tool": tool, "mode": mode},
        }
        event = self._event(
            "execute_tool",
            pending,
            tool_name=tool,
            tool_call_id=_id_text(message["id"]),
            tool_arguments=_arguments(pending.params),
            notes=[f"{NOTE} refused (mode enforce): {reason}"],
            refused=True,
        )
        return Outcome(to_client=[{"jsonrpc": "2.0", "id": message["id"], "error": error}], events=[event])

    def refuse_unparseable(self, raw: bytes | str, reason: str, from_server: bool = False) -> Outcome:
        """Fail closed on bytes the gateway cannot read: never forwarded, answered with a
        JSON-RPC error when an id can be made out, and recorded on the dead-letter topic (and as
        a refused call on runward.raw.llm when it looks like a tools/call)."""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            guess = json.loads(text)  # lenient, only to name the id and method in the records
        except (ValueError, RecursionError):
            guess = None
        guess = guess if isinstance(guess, dict) else {}
        if from_server:
            pending = self._pending.pop(_key(guess.get("id")), None) if _valid_id(guess.get("id")) else None
            out = Outcome(dead_letters=[self._dead_letter(text, f"unparseable message from the MCP server: {reason}")])
            if pending is not None:  # the client waits for this answer: tell it, do not pass it on
                out.to_client.append(
                    _error(
                        guess["id"], INTERNAL_ERROR, f"the MCP server's answer was withheld by the gateway: {reason}"
                    )
                )
            return out
        return self._refuse_client(guess, text, PARSE_ERROR, f"unparseable message: {reason}")

    def refuse_malformed(self, message: Any, problem: str) -> Outcome:
        text = json.dumps(message, default=str)
        guess = message if isinstance(message, dict) else {}
        code = INVALID_PARAMS if problem.startswith("params") else INVALID_REQUEST
        return self._refuse_client(guess, text, code, f"invalid JSON-RPC request: {problem}")

    def _refuse_client(self, guess: dict[str, Any], text: str, code: int, reason: str) -> Outcome:
        request_id = guess.get("id") if _valid_id(guess.get("id")) else None
        out = Outcome(dead_letters=[self._dead_letter(text, reason)])
        if "id" in guess or not guess:  # JSON-RPC: no answer to a notification, id null if unknown
            out.to_client.append(_error(request_id, code, f"Refused by the Runward tool gateway: {reason}"))
        if guess.get("method") == "tools/call":
            params: dict[str, Any] = guess["params"] if isinstance(guess.get("params"), dict) else {}
            pending = _Pending("tools/call", params, self.clock())
            out.events.append(
                self._event(
                    "execute_tool",
                    pending,
                    tool_name=str(params.get("name", ""))[:256],
                    tool_call_id=_id_text(request_id),
                    tool_arguments=_arguments(params),
                    notes=[f"{NOTE} refused (fail closed, any mode): {reason}"],
                    refused=True,
                )
            )
        return out

    def _dead_letter(self, text: str, reason: str) -> DeadLetter:
        clean = redact_text(text)[0]
        return DeadLetter(
            stage=DEAD_LETTER_STAGE,
            ts=self.clock(),
            source=SourceRef(topic=f"mcp-gateway:{self.server}", partition=0, offset=next(self._refusals)),
            reason=f"{reason} (agent {self.agent.deployment})",
            key=self.agent.deployment,
            payload=clean[:_PAYLOAD_KEPT],
            payload_truncated=len(clean) > _PAYLOAD_KEPT,
        )

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
                if pending.method == "tools/list":
                    out.to_client = [self._hide_refused(message)]
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

    def _hide_refused(self, message: JsonRpc) -> JsonRpc:
        """In enforce mode the agent is not offered what it would be refused: a tools/list answer
        loses the tools outside the bundle (and outside an enforced hand-written allowlist). The
        record keeps the whole list the server advertised, for the AI-BOM."""
        result = message.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
            return message
        names = [str(t.get("name")) for t in result["tools"] if isinstance(t, dict)]
        hidden = hidden_tools(self._bundle(), self.server, names)
        if self.policy is not None and self.policy.mode == "enforce":
            hidden |= {n for n in names if not self.policy.decide(self.server, n).allowed}
        if not hidden:
            return message
        tools = [t for t in result["tools"] if not (isinstance(t, dict) and str(t.get("name")) in hidden)]
        return {**message, "result": {**result, "tools": tools}}

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
            **_trace_context(pending.params),
            **fields,
        )
        return apply_content_policy(event, self.config, notes=notes or [])


_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})-[0-9a-f]{2}$")


def _trace_context(params: dict[str, Any]) -> dict[str, str]:
    """W3C trace context the client put in `_meta.traceparent` (mcp SDK, SEP-414): the record
    is the client's call span, so it joins the agent's trace and its OTLP spans."""
    meta = params.get("_meta")
    value = meta.get("traceparent") if isinstance(meta, dict) else None
    match = _TRACEPARENT.match(value) if isinstance(value, str) else None
    if match is None or not match["trace"].strip("0") or not match["span"].strip("0"):
        return {}
    return {"trace_id": match["trace"], "span_id": match["span"]}


def _valid_id(request_id: Any) -> bool:
    return isinstance(request_id, str | int) and not isinstance(request_id, bool)


def _error(request_id: Any, code: int, message: str) -> JsonRpc:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _invalid(message: Any) -> str | None:
    """Why a client message is not a JSON-RPC 2.0 message the gateway can judge, or None."""
    if not isinstance(message, dict):
        return f"expected a JSON object or a non-empty batch of them, got {type(message).__name__}"
    if message.get("jsonrpc") != "2.0":
        return 'jsonrpc must be "2.0"'
    if "id" in message and not (_valid_id(message["id"]) or message["id"] is None and "method" not in message):
        return "id must be a string or an integer"
    if "method" not in message:
        return None if "id" in message and ("result" in message or "error" in message) else "no method"
    if not isinstance(message["method"], str):
        return "method must be a string"
    if message.get("params") is not None and not isinstance(message["params"], dict | list):
        return "params must be an object or an array"
    if message["method"] != "tools/call":
        return None
    if "id" not in message:
        return "a tools/call must be a request with an id, not a notification"
    params = message.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        return "params of a tools/call must be an object with a string name"
    if "arguments" in params and not isinstance(params["arguments"], dict | None):
        return "params.arguments of a tools/call must be an object"
    return None


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
