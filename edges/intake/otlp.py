"""OTLP traces -> RawLlmEvent, following the OpenTelemetry GenAI and MCP semantic conventions.

Pure: bytes (protobuf or OTLP/JSON) in, contract records and per-span rejections out. Spans
that are neither GenAI nor client-side MCP operations are accepted and ignored: an agent's
SDK exports HTTP and database spans too, and those are not ours to reject.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
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


class OtlpDecodeError(ValueError):
    """The request body is not an ExportTraceServiceRequest (HTTP 400, not retryable)."""


class SpanRejected(ValueError):
    """One span that cannot become a record; the message names what is missing."""


@dataclass
class Translation:
    events: list[RawLlmEvent] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one reason per rejected span
    ignored: int = 0

    @property
    def error_message(self) -> str:
        """The partial_success message: distinct reasons, most frequent first."""
        counts: dict[str, int] = {}
        for reason in self.rejected:
            counts[reason] = counts.get(reason, 0) + 1
        parts = [f"{n} span(s): {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1])]
        return "; ".join(parts)


# --- decoding ------------------------------------------------------------------------------------


def decode_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == PROTOBUF:
        try:
            return ExportTraceServiceRequest.FromString(body)
        except DecodeError as exc:
            raise OtlpDecodeError(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from None
    if media == JSON:
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise OtlpDecodeError(f"body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise OtlpDecodeError("OTLP/JSON body must be an object with resourceSpans")
        request = ExportTraceServiceRequest()
        try:
            # OTLP/JSON: unknown fields MUST be ignored; ids are hex, not proto3-JSON base64.
            json_format.ParseDict(_hex_ids_to_base64(data), request, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise OtlpDecodeError(f"body is not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None
        return request
    raise OtlpDecodeError(f"unsupported content type {content_type!r}; send {PROTOBUF} or {JSON}")


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
                if event is None:
                    result.ignored += 1
                else:
                    result.events.append(event)
    return result


def operation_of(attrs: Mapping[str, Any], kind: int) -> str | None:
    """The contract operation of a span, or None for spans Runward does not record."""
    method = attrs.get("mcp.method.name")
    if method is not None:
        # Server-side MCP spans describe the server's work; the client span is the agent's.
        if kind == Span.SpanKind.SPAN_KIND_SERVER:
            return None
        return _MCP_METHODS.get(str(method))
    name = attrs.get("gen_ai.operation.name")
    return _GENAI_OPERATIONS.get(str(name)) if name is not None else None


def span_to_event(
    resource: Mapping[str, Any], span: Span, sender: str | None, config: SourceConfig
) -> RawLlmEvent | None:
    attrs = attributes(span.attributes)
    operation = operation_of(attrs, span.kind)
    if operation is None:
        return None
    attribution = attribute(resource, sender, config)
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    if not trace_id.strip("0") or not span_id.strip("0"):
        raise SpanRejected("span without trace_id/span_id; the span cannot be identified")
    nanos = span.start_time_unix_nano or span.end_time_unix_nano
    ts = datetime.fromtimestamp(nanos / 1e9, tz=timezone.utc) if nanos else datetime.now(timezone.utc)
    inputs, outputs = messages(attrs, span)
    tool_result = attrs.get("gen_ai.tool.call.result")
    if operation == "execute_tool" and tool_result is not None:
        outputs.append(_as_text(tool_result))
    try:
        event = RawLlmEvent(
            event_id=f"otlp:{trace_id}:{span_id}",
            ts=ts,
            attribution=attribution,
            operation=operation,
            provider=_str(attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system")),
            request_model=_str(attrs.get("gen_ai.request.model")),
            response_model=_str(attrs.get("gen_ai.response.model")),
            tool_name=_str(attrs.get("gen_ai.tool.name")),
            tool_call_id=_str(attrs.get("gen_ai.tool.call.id") or attrs.get("jsonrpc.request.id")),
            tool_arguments=_arguments(attrs.get("gen_ai.tool.call.arguments")),
            mcp_server=mcp_server(resource, attrs) if "mcp.method.name" in attrs else None,
            input_messages=inputs,
            output_messages=outputs,
            input_tokens=_int(attrs.get("gen_ai.usage.input_tokens", attrs.get("gen_ai.usage.prompt_tokens"))),
            output_tokens=_int(attrs.get("gen_ai.usage.output_tokens", attrs.get("gen_ai.usage.completion_tokens"))),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SpanRejected(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    return apply_content_policy(event, config)


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
