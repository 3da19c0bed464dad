"""OTLP traces and logs -> RawLlmEvent, following the OpenTelemetry GenAI and MCP semantic
conventions (current and older attribute names), OpenLLMetry's `llm.*` / `traceloop.*` /
`gen_ai.prompt.N.*` attributes and the mcp SDK's own spans.

Pure: bytes (protobuf or OTLP/JSON) in, contract records and per-item rejections out. What is
not understood is never dropped silently: spans and log records that are not GenAI/MCP (an
agent's SDK exports HTTP and database spans too) are accepted and ignored, but counted and named
in the partial_success warning; GenAI-looking items Runward cannot map are rejected with a reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from pydantic import ValidationError

from edges.intake.config import SourceConfig
from edges.intake.content import apply_content_policy
from runward.core.contracts import Attribution, RawLlmEvent
from runward.core.contracts.common import deployment_id

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# gen_ai.operation.name values that are one model call for the AI-BOM and the profiler.
_CHAT_OPERATIONS = {"chat", "text_completion", "generate_content"}
_GENAI_OPERATIONS = {
    **{op: "chat" for op in _CHAT_OPERATIONS},
    "execute_tool": "execute_tool",
    "invoke_agent": "invoke_agent",
}
_MCP_METHODS = {"tools/call": "execute_tool", "tools/list": "tools_list", "initialize": "initialize"}
# OpenLLMetry before it followed gen_ai.operation.name: llm.request.type and traceloop.span.kind.
_LLM_REQUEST_TYPES = {"chat": "chat", "completion": "chat", "embedding": None, "rerank": None}
_TRACELOOP_KINDS = {"tool": "execute_tool", "agent": "invoke_agent"}
# Attribute prefixes that make a span or record ours to understand (or to say we did not).
_GENAI_PREFIXES = ("gen_ai.", "llm.", "traceloop.", "mcp.")


class OtlpDecodeError(ValueError):
    """The request body is not an ExportTraceServiceRequest (HTTP 400, not retryable)."""


class SpanRejected(ValueError):
    """One span that cannot become a record; the message names what is missing."""


@dataclass
class Translation:
    events: list[RawLlmEvent] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one reason per rejected item
    ignored: list[str] = field(default_factory=list)  # one reason per accepted-but-unused item
    unit: str = "span"

    @property
    def error_message(self) -> str:
        """The partial_success message: rejections, then what was accepted but not used (OTLP
        allows a warning with nothing rejected), distinct reasons, most frequent first."""
        return "; ".join(
            [*_counted(self.rejected, self.unit, ""), *_counted(self.ignored, self.unit, "accepted, not used: ")]
        )


def _counted(reasons: list[str], unit: str, prefix: str) -> list[str]:
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    return [f"{n} {unit}(s): {prefix}{reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1])]


# --- decoding ------------------------------------------------------------------------------------


def decode_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    return decode_export(body, content_type, ExportTraceServiceRequest)


def decode_export(body: bytes, content_type: str, kind: type[_Export]) -> _Export:
    """One OTLP export request (traces, logs or metrics) from protobuf or OTLP/JSON."""
    media = content_type.split(";", 1)[0].strip().lower()
    name = kind.DESCRIPTOR.name
    if media == PROTOBUF:
        try:
            return kind.FromString(body)
        except DecodeError as exc:
            raise OtlpDecodeError(f"body is not a protobuf {name}: {exc}") from None
    if media == JSON:
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise OtlpDecodeError(f"body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise OtlpDecodeError(f"OTLP/JSON body must be an object (a {name})")
        request = kind()
        try:
            # OTLP/JSON: unknown fields MUST be ignored; ids are hex, not proto3-JSON base64.
            json_format.ParseDict(_hex_ids_to_base64(data), request, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise OtlpDecodeError(f"body is not an OTLP/JSON {name}: {exc}") from None
        return request
    raise OtlpDecodeError(f"unsupported content type {content_type!r}; send {PROTOBUF} or {JSON}")


_Export = TypeVar("_Export", bound=Message)

_ID_FIELDS = {"traceId": 16, "spanId": 8, "parentSpanId": 8, "trace_id": 16, "span_id": 8, "parent_span_id": 8}


def _hex_ids_to_base64(value: Any) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            size = _ID_FIELDS.get(key)
            if size and isinstance(inner, str) and len(inner) == 2 * size:
                try:
                    out[key] = base64.b64encode(binascii.unhexlify(inner)).decode()
                    continue
                except binascii.Error:
                    pass  # not hex: a sender using proto3-JSON base64; keep it
            out[key] = _hex_ids_to_base64(inner)
        return out
    if isinstance(value, list):
        return [_hex_ids_to_base64(v) for v in value]
    return value


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def attributes(items: Any) -> dict[str, Any]:
    pairs: Iterator[KeyValue] = iter(items)
    return {kv.key: any_value(kv.value) for kv in pairs}


# --- translation ---------------------------------------------------------------------------------


def translate(request: ExportTraceServiceRequest, sender: str | None, config: SourceConfig) -> Translation:
    result = Translation()
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                try:
                    event = span_to_event(resource, span, sender, config)
                except SpanRejected as exc:
                    result.rejected.append(str(exc))
                    continue
                except _NotOurs as exc:
                    result.ignored.append(str(exc))
                    continue
                result.events.append(event)
    return result


class _NotOurs(ValueError):
    """An item that is valid OTLP but not a GenAI/MCP call: accepted, counted, not recorded."""


def operation_of(attrs: Mapping[str, Any], kind: int, name: str = "") -> str | None:
    """The contract operation of a span, or None for spans Runward does not record."""
    method = attrs.get("mcp.method.name")
    if method is not None:
        # Server-side MCP spans describe the server's work; the client span is the agent's.
        if kind == Span.SpanKind.SPAN_KIND_SERVER:
            return None
        return _MCP_METHODS.get(str(method))
    op = attrs.get("gen_ai.operation.name")
    if op is not None:
        return _GENAI_OPERATIONS.get(str(op))
    legacy = attrs.get("llm.request.type")
    if legacy is not None:
        return _LLM_REQUEST_TYPES.get(str(legacy))
    traceloop = attrs.get("traceloop.span.kind")
    if traceloop is not None:
        return _TRACELOOP_KINDS.get(str(traceloop))
    if attrs.get("gen_ai.system") is not None and attrs.get("gen_ai.request.model") is not None:
        return "chat"  # GenAI semconv before gen_ai.operation.name (v1.26)
    return None


def _not_understood(attrs: Mapping[str, Any], kind: int, name: str) -> Exception:
    """Why a span with no operation was not recorded: a GenAI/MCP span we cannot map is named."""
    if kind == Span.SpanKind.SPAN_KIND_SERVER and "mcp.method.name" in attrs:
        return _NotOurs("MCP server-side span (the client span is the agent's call)")
    if "mcp.method.name" in attrs:
        return _NotOurs(f"MCP method {attrs['mcp.method.name']!r} is not a call Runward records")
    for key in ("gen_ai.operation.name", "llm.request.type", "traceloop.span.kind"):
        if key in attrs:
            return _NotOurs(f"{key} {attrs[key]!r} is not a call Runward records")
    if any(k.startswith(_GENAI_PREFIXES) for k in attrs):
        return SpanRejected(
            f"GenAI span {name!r} has no gen_ai.operation.name (nor llm.request.type, traceloop.span.kind, "
            "mcp.method.name); set the operation so the call can be recorded"
        )
    return _NotOurs("not a GenAI or MCP span")


def span_to_event(resource: Mapping[str, Any], span: Span, sender: str | None, config: SourceConfig) -> RawLlmEvent:
    """The record of one span. Raises SpanRejected (a GenAI span that cannot be recorded) or
    _NotOurs (any other span: accepted and counted)."""
    attrs = attributes(span.attributes)
    operation = operation_of(attrs, span.kind, span.name)
    if operation is None:
        raise _not_understood(attrs, span.kind, span.name)
    attribution = attribute(resource, sender, config)
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    if not trace_id.strip("0") or not span_id.strip("0"):
        raise SpanRejected("span without trace_id/span_id; the span cannot be identified")
    nanos = span.start_time_unix_nano or span.end_time_unix_nano
    inputs, outputs = messages(attrs, span)
    tool_result = attrs.get("gen_ai.tool.call.result", attrs.get("traceloop.entity.output"))
    if operation == "execute_tool" and tool_result is not None:
        outputs.append(_as_text(tool_result))
    parent = span.parent_span_id.hex() if span.parent_span_id and span.parent_span_id.hex().strip("0") else None
    return _event(
        attrs,
        config,
        event_id=f"otlp:{trace_id}:{span_id}",
        ts=_time(nanos),
        attribution=attribution,
        operation=operation,
        tool_name=tool_name_of(attrs, span.name) if operation == "execute_tool" else None,
        tool_arguments=_arguments(attrs.get("gen_ai.tool.call.arguments", attrs.get("traceloop.entity.input"))),
        mcp_server=mcp_server(resource, attrs) if "mcp.method.name" in attrs else None,
        input_messages=inputs,
        output_messages=outputs,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        links=[f"{link.trace_id.hex()}:{link.span_id.hex()}" for link in span.links],
    )


def _event(attrs: Mapping[str, Any], config: SourceConfig, **fields: Any) -> RawLlmEvent:
    """A RawLlmEvent from the attributes every GenAI semconv version and OpenLLMetry share."""
    try:
        event = RawLlmEvent(
            provider=_str(attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system")),
            request_model=_str(attrs.get("gen_ai.request.model")),
            response_model=_str(attrs.get("gen_ai.response.model")),
            tool_call_id=_str(attrs.get("gen_ai.tool.call.id") or attrs.get("jsonrpc.request.id")),
            input_tokens=_int(_first(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")),
            output_tokens=_int(_first(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")),
            agent_name=_str(attrs.get("gen_ai.agent.name") or attrs.get("traceloop.workflow.name")),
            conversation_id=_str(attrs.get("gen_ai.conversation.id") or attrs.get("session.id")),
            endpoint=model_endpoint(attrs) if fields["operation"] == "chat" else None,
            **fields,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SpanRejected(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    return apply_content_policy(event, config)


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    return next((attrs[k] for k in keys if attrs.get(k) is not None), None)


def _time(nanos: int) -> datetime:
    return datetime.fromtimestamp(nanos / 1e9, tz=timezone.utc) if nanos else datetime.now(timezone.utc)


_MCP_SPAN_NAME = re.compile(r"^(?:MCP send )?tools/call (?P<tool>\S+)$")


def tool_name_of(attrs: Mapping[str, Any], span_name: str) -> str | None:
    """The tool an execute_tool span called: gen_ai.tool.name, OpenLLMetry's entity name, or the
    span name the mcp SDK (2.x) sets as `MCP send tools/call <tool>` without a tool attribute."""
    name = _str(attrs.get("gen_ai.tool.name"))
    if name is None and attrs.get("traceloop.span.kind") == "tool":
        name = _str(attrs.get("traceloop.entity.name"))
    if name is None:
        match = _MCP_SPAN_NAME.match(span_name)
        name = match.group("tool") if match else None
    if name is None:
        raise SpanRejected(
            f"execute_tool span {span_name!r} names no tool (gen_ai.tool.name, traceloop.entity.name or a "
            "`tools/call <tool>` span name); the call cannot be profiled"
        )
    return name


def model_endpoint(attrs: Mapping[str, Any]) -> str | None:
    """Where the model was called: server.address[:port], else the OpenAI base URL's host."""
    address = _str(attrs.get("server.address"))
    base = _str(attrs.get("gen_ai.openai.api_base"))
    if address and "://" in address:  # some instrumentations put the base URL there
        base, address = address, None
    if address:
        port = attrs.get("server.port")
        return f"{address}:{port}" if port else address
    if base:
        parsed = urlsplit(base)
        return parsed.netloc or None
    return None


def attribute(resource: Mapping[str, Any], sender: str | None, config: SourceConfig) -> Attribution:
    """Who sent the span: k8s resource attributes, else the configured sender mapping."""
    namespace = _str(resource.get("k8s.namespace.name"))
    name = _str(resource.get("k8s.deployment.name"))
    common = {
        "namespace": namespace,
        "pod": _str(resource.get("k8s.pod.name")),
        "pod_uid": _str(resource.get("k8s.pod.uid")),
        "node": _str(resource.get("k8s.node.name")),
        "container_id": _str(resource.get("container.id")),
    }
    if namespace and name:
        try:
            return Attribution(deployment=deployment_id(namespace, name), **common)
        except ValueError as exc:
            raise SpanRejected(f"resource k8s.namespace.name/k8s.deployment.name: {exc}") from None
    if sender and sender in config.senders:
        mapped = config.senders[sender]
        return Attribution(deployment=mapped, **{**common, "namespace": mapped.partition("/")[0]})
    if common["pod_uid"] or common["container_id"]:
        return Attribution(**common)  # ingest resolves the pod through the cluster registry
    raise SpanRejected(
        "cannot attribute span to a Deployment: resource has no k8s.namespace.name + k8s.deployment.name "
        f"(nor k8s.pod.uid/container.id) and sender {sender or 'unknown'} is not in the sender map; "
        "set OTEL_RESOURCE_ATTRIBUTES or map the sender IP in the receiver configuration"
    )


def mcp_server(resource: Mapping[str, Any], attrs: Mapping[str, Any]) -> str | None:
    """The MCP server a client span talked to: its address for HTTP, else what the SDK named it."""
    address = _str(attrs.get("server.address"))
    if address:
        port = attrs.get("server.port")
        return f"{address}:{port}" if port else address
    return _str(attrs.get("mcp.server.name"))


def messages(attrs: Mapping[str, Any], span: Span) -> tuple[list[str], list[str]]:
    """Opt-in content as text lines, from current attributes or the older span events."""
    inputs = [
        *_render_parts("system", _json(attrs.get("gen_ai.system_instructions"))),
        *_render_messages(_json(attrs.get("gen_ai.input.messages"))),
    ]
    outputs = _render_messages(_json(attrs.get("gen_ai.output.messages")))
    inputs += _indexed_messages(attrs, "gen_ai.prompt")
    outputs += _indexed_messages(attrs, "gen_ai.completion")
    for event in span.events:
        data = attributes(event.attributes)
        if event.name == "gen_ai.content.prompt" and "gen_ai.prompt" in data:
            inputs.append(_as_text(data["gen_ai.prompt"]))
        elif event.name == "gen_ai.content.completion" and "gen_ai.completion" in data:
            outputs.append(_as_text(data["gen_ai.completion"]))
        elif (
            event.name
            in {"gen_ai.system.message", "gen_ai.user.message", "gen_ai.tool.message", "gen_ai.assistant.message"}
            and "content" in data
        ):
            role = event.name.split(".")[1]
            inputs.append(f"{role}: {_as_text(data['content'])}")
        elif event.name == "gen_ai.choice" and "message" in data:
            outputs.extend(_render_messages([_json(data["message"])]))
    return inputs, outputs


_INDEXED = re.compile(r"^(gen_ai\.prompt|gen_ai\.completion)\.(\d+)\.(.+)$")


def _indexed_messages(attrs: Mapping[str, Any], prefix: str) -> list[str]:
    """OpenLLMetry's flattened messages: gen_ai.prompt.N.role / .content / .tool_calls.M.*."""
    by_index: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        match = _INDEXED.match(key)
        if match and match.group(1) == prefix:
            by_index.setdefault(int(match.group(2)), {})[match.group(3)] = value
    lines: list[str] = []
    for index in sorted(by_index):
        fields = by_index[index]
        role = str(fields.get("role", "unknown"))
        if fields.get("content") not in (None, ""):
            lines.append(f"{role}: {_as_text(fields['content'])}")
        calls = sorted({k.split(".")[1] for k in fields if k.startswith("tool_calls.") and k.count(".") >= 2})
        for call in calls:
            name, arguments = fields.get(f"tool_calls.{call}.name"), fields.get(f"tool_calls.{call}.arguments")
            lines.append(f"{role}: tool_call {name}({_as_text(arguments)})")
    return lines


def _render_messages(value: Any) -> list[str]:
    if not isinstance(value, list):
        return [] if value is None else [_as_text(value)]
    lines: list[str] = []
    for message in value:
        if not isinstance(message, dict):
            lines.append(_as_text(message))
            continue
        role = str(message.get("role", "unknown"))
        if "parts" in message:
            lines.extend(_render_parts(role, message["parts"]))
        elif message.get("content") is not None:
            lines.append(f"{role}: {_as_text(message['content'])}")
    return lines


def _render_parts(role: str, parts: Any) -> list[str]:
    if not isinstance(parts, list):
        return []
    lines = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            lines.append(f"{role}: {part.get('content', '')}")
        elif kind == "tool_call":
            lines.append(f"{role}: tool_call {part.get('name')}({_as_text(part.get('arguments'))})")
        elif kind == "tool_call_response":
            lines.append(f"{role}: tool_result {_as_text(part.get('response'))}")
    return lines


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _arguments(value: Any) -> dict[str, Any] | None:
    value = _json(value)
    if value is None:
        return None
    return value if isinstance(value, dict) else {"value": value}


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


# --- logs: GenAI events as log records -----------------------------------------------------------

# Content events of the GenAI semconv: the current one-record-per-call event, and the older
# per-message events (body {content, tool_calls} / gen_ai.choice {message}).
_DETAILS_EVENT = "gen_ai.client.inference.operation.details"
_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def translate_logs(request: ExportLogsServiceRequest, sender: str | None, config: SourceConfig) -> Translation:
    """GenAI events sent as log records (openai-v2 with EVENT_ONLY content, `opentelemetry-instrument`
    defaults) -> one content record per call (span), tied to the call by `content_of`."""
    result = Translation(unit="log record")
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        calls: dict[tuple[str, str], list[LogRecord]] = {}
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                name = record.event_name or str(attributes(record.attributes).get("event.name", ""))
                if name != _DETAILS_EVENT and name not in _MESSAGE_EVENTS and name != "gen_ai.choice":
                    reason = f"event {name!r} is not a GenAI content event" if name else "not a GenAI event"
                    result.ignored.append(reason)
                    continue
                trace_id, span_id = record.trace_id.hex(), record.span_id.hex()
                if not trace_id.strip("0") or not span_id.strip("0"):
                    result.rejected.append(f"GenAI event {name!r} without trace_id/span_id cannot be tied to a call")
                    continue
                calls.setdefault((trace_id, span_id), []).append(record)
        for (trace_id, span_id), records in calls.items():
            try:
                result.events.append(_content_event(resource, trace_id, span_id, records, sender, config))
            except SpanRejected as exc:
                result.rejected.extend([str(exc)] * len(records))
    return result


def _content_event(
    resource: Mapping[str, Any],
    trace_id: str,
    span_id: str,
    records: list[LogRecord],
    sender: str | None,
    config: SourceConfig,
) -> RawLlmEvent:
    attribution = attribute(resource, sender, config)
    inputs: list[str] = []
    outputs: list[str] = []
    attrs: dict[str, Any] = {}
    for record in records:
        data = attributes(record.attributes)
        attrs.update(data)
        name = record.event_name or str(data.get("event.name", ""))
        body = any_value(record.body)
        if name == _DETAILS_EVENT:
            inputs += _render_parts("system", _json(data.get("gen_ai.system_instructions")))
            inputs += _render_messages(_json(data.get("gen_ai.input.messages")))
            outputs += _render_messages(_json(data.get("gen_ai.output.messages")))
        elif name in _MESSAGE_EVENTS:
            inputs += _event_body(_MESSAGE_EVENTS[name], body)
        elif isinstance(body, dict):  # gen_ai.choice
            outputs += _event_body("assistant", body.get("message"))
    first = min(records, key=lambda r: r.time_unix_nano or r.observed_time_unix_nano)
    operation = _GENAI_OPERATIONS.get(str(attrs.get("gen_ai.operation.name", "chat")), "chat")
    # The id names the call and its first event: a re-sent export repeats it, so consumers can
    # tell a retry from a second call.
    return _event(
        attrs,
        config,
        event_id=f"otlp-log:{trace_id}:{span_id}:{first.time_unix_nano or first.observed_time_unix_nano}",
        ts=_time(first.time_unix_nano or first.observed_time_unix_nano),
        attribution=attribution,
        operation=operation,
        tool_name=_str(attrs.get("gen_ai.tool.name")),
        input_messages=inputs,
        output_messages=outputs,
        trace_id=trace_id,
        span_id=span_id,
        content_of=f"otlp:{trace_id}:{span_id}",
    )


def _event_body(role: str, body: Any) -> list[str]:
    """An older GenAI message event's body: {content, tool_calls: [{function: {name, arguments}}]}."""
    if not isinstance(body, dict):
        return [] if body in (None, "") else [f"{role}: {_as_text(body)}"]
    lines = [f"{role}: {_as_text(body['content'])}"] if body.get("content") not in (None, "") else []
    for call in body.get("tool_calls") or []:
        function = call.get("function", {}) if isinstance(call, dict) else {}
        lines.append(f"{role}: tool_call {function.get('name')}({_as_text(function.get('arguments'))})")
    return lines


# --- metrics -------------------------------------------------------------------------------------

_GENAI_METRICS = {"gen_ai.client.token.usage", "gen_ai.client.operation.duration", "gen_ai.client.generation.choices"}


@dataclass
class MetricsTranslation:
    """GenAI token usage per (deployment, provider, model, token type); other data points counted."""

    token_usage: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    accepted: int = 0
    ignored: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def error_message(self) -> str:
        return "; ".join(
            [*_counted(self.rejected, "data point", ""), *_counted(self.ignored, "data point", "accepted, not used: ")]
        )


def translate_metrics(
    request: ExportMetricsServiceRequest, sender: str | None, config: SourceConfig
) -> MetricsTranslation:
    """Token usage from `gen_ai.client.token.usage` histograms (their sum is the token count)."""
    result = MetricsTranslation()
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points = list(_data_points(metric))
                if metric.name not in _GENAI_METRICS:
                    result.ignored += [f"metric {metric.name!r} is not a GenAI metric"] * len(points)
                    continue
                try:
                    deployment = attribute(resource, sender, config).deployment or "unattributed"
                except SpanRejected as exc:
                    result.rejected += [str(exc)] * len(points)
                    continue
                result.accepted += len(points)
                if metric.name == "gen_ai.client.token.usage":
                    _add_usage(result, deployment, points)
    return result


def _data_points(metric: Any) -> Iterator[Any]:
    kind = metric.WhichOneof("data")
    yield from getattr(metric, kind).data_points if kind else ()


def _add_usage(result: MetricsTranslation, deployment: str, points: list[Any]) -> None:
    for point in points:
        data = attributes(point.attributes)
        key = (
            deployment,
            str(data.get("gen_ai.provider.name") or data.get("gen_ai.system") or "unknown"),
            str(data.get("gen_ai.response.model") or data.get("gen_ai.request.model") or "unknown"),
            str(data.get("gen_ai.token.type", "unknown")),
        )
        value = int(point.sum) if hasattr(point, "sum") else int(getattr(point, "as_int", 0) or 0)
        result.token_usage[key] = result.token_usage.get(key, 0) + value
