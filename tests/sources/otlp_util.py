"""Real OTLP payloads, produced by the official OpenTelemetry SDK."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

SpanSpec = tuple[str, SpanKind, dict[str, Any]]


def k8s_resource(namespace: str, deployment: str, pod: str | None = None) -> dict[str, Any]:
    attrs = {"service.name": deployment, "k8s.namespace.name": namespace, "k8s.deployment.name": deployment}
    if pod:
        attrs["k8s.pod.name"] = pod
    return attrs


def export_request(resource: dict[str, Any], spans: Sequence[SpanSpec]) -> ExportTraceServiceRequest:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("runward-tests")
    for name, kind, attrs in spans:
        with tracer.start_as_current_span(name, kind=kind, attributes=attrs):
            pass
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans())


def to_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON as the spec encodes it: hex trace/span ids, integer enums, camelCase."""
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(data).encode()


def chat_span(model: str = "gpt-4o", served: str = "gpt-4o-2024-08-06", prompt: str | None = None) -> SpanSpec:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": served,
        "gen_ai.usage.input_tokens": 42,
        "gen_ai.usage.output_tokens": 7,
        "server.address": "api.openai.com",
    }
    if prompt is not None:
        attrs["gen_ai.input.messages"] = json.dumps([{"role": "user", "parts": [{"type": "text", "content": prompt}]}])
        attrs["gen_ai.output.messages"] = json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "It is 12:00."}], "finish_reason": "stop"}]
        )
    return (f"chat {model}", SpanKind.CLIENT, attrs)


def mcp_call_span(tool: str, arguments: dict[str, Any], request_id: str = "7") -> SpanSpec:
    return (
        f"tools/call {tool}",
        SpanKind.CLIENT,
        {
            "mcp.method.name": "tools/call",
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "jsonrpc.request.id": request_id,
            "mcp.session.id": "191c4850af6c49e08843a3f6c80e5046",
            "mcp.protocol.version": "2025-11-25",
            "network.transport": "tcp",
            "server.address": "mcp.docs.example.com",
            "server.port": 443,
            "gen_ai.tool.call.arguments": json.dumps(arguments),
        },
    )
