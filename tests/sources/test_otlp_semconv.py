"""Older and vendor attribute sets the intake must understand, and what it reports when it does
not: OpenLLMetry before gen_ai.operation.name (llm.request.type, gen_ai.prompt.N.*,
traceloop.span.kind), GenAI semconv before the operation name, GenAI events as log records in
both event styles, and GenAI metrics."""

from __future__ import annotations

import json

import httpx
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.trace import SpanKind

from edges.intake import otlp
from edges.intake.config import SourceConfig
from tests.sources.conftest import AUTH
from tests.sources.otlp_util import export_request, k8s_resource

RESOURCE = k8s_resource("agents", "support-bot")
TRACE, SPAN = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736"), bytes.fromhex("00f067aa0ba902b7")


def translate(spans: list[tuple[str, SpanKind, dict[str, object]]]) -> otlp.Translation:
    request = export_request(RESOURCE, spans)  # type: ignore[arg-type]
    return otlp.translate(request, None, SourceConfig())


def test_openllmetry_indexed_prompts_and_completions() -> None:
    attrs = {
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "You are terse.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "list the repo",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.tool_calls.0.name": "git_log",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"max_count": 5}',
        "llm.usage.total_tokens": 30,
        "gen_ai.usage.prompt_tokens": 20,
        "gen_ai.usage.completion_tokens": 10,
        "traceloop.workflow.name": "researcher",
    }
    (event,) = translate([("openai.chat", SpanKind.CLIENT, attrs)]).events
    assert event.operation == "chat" and event.provider == "openai"
    assert event.input_messages == ["system: You are terse.", "user: list the repo"]
    assert event.output_messages == ['assistant: tool_call git_log({"max_count": 5})']
    assert (event.input_tokens, event.output_tokens, event.agent_name) == (20, 10, "researcher")


def test_traceloop_tool_spans_name_the_tool_and_carry_input_and_output() -> None:
    attrs = {
        "traceloop.span.kind": "tool",
        "traceloop.entity.name": "run_query",
        "traceloop.entity.input": json.dumps({"sql": "select 1"}),
        "traceloop.entity.output": "1 row",
    }
    (event,) = translate([("run_query.tool", SpanKind.INTERNAL, attrs)]).events
    assert (event.operation, event.tool_name, event.mcp_server) == ("execute_tool", "run_query", None)
    assert event.tool_arguments == {"sql": "select 1"} and event.output_messages == ["1 row"]


def test_a_genai_span_without_an_operation_is_rejected_with_a_reason_and_others_are_counted() -> None:
    result = translate(
        [
            ("mystery", SpanKind.CLIENT, {"gen_ai.request.model": "gpt-4o"}),
            ("GET /health", SpanKind.SERVER, {"http.request.method": "GET"}),
            ("embed", SpanKind.CLIENT, {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "e"}),
        ]
    )
    assert result.events == [] and len(result.rejected) == 1 and len(result.ignored) == 2
    assert "GenAI span 'mystery' has no gen_ai.operation.name" in result.error_message
    assert "accepted, not used: not a GenAI or MCP span" in result.error_message


def to_json(message: ExportMetricsServiceRequest) -> bytes:
    return json.dumps(json_format.MessageToDict(message)).encode()


def _kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def _text(text: str) -> AnyValue:
    return AnyValue(string_value=text)


def _logs(*records: dict[str, object]) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    for key, value in RESOURCE.items():
        resource_logs.resource.attributes.append(_kv(key, _text(str(value))))
    scope = resource_logs.scope_logs.add()
    for fields in records:
        record = scope.log_records.add(time_unix_nano=1_764_500_000_000_000_000)
        for key, value in fields.items():
            if key == "body":
                record.body.CopyFrom(value)  # type: ignore[arg-type]
            elif key in {"trace_id", "span_id", "event_name"}:
                setattr(record, key, value)
            else:
                record.attributes.append(_kv(key, _text(str(value))))
    return request


def _body(**fields: str) -> AnyValue:
    return AnyValue(kvlist_value=KeyValueList(values=[_kv(k, _text(v)) for k, v in fields.items()]))


def test_older_genai_message_events_become_one_content_record_per_call() -> None:
    request = _logs(
        {
            "event_name": "gen_ai.system.message",
            "trace_id": TRACE,
            "span_id": SPAN,
            "gen_ai.system": "openai",
            "body": _body(content="be nice"),
        },
        {"event_name": "gen_ai.user.message", "trace_id": TRACE, "span_id": SPAN, "body": _body(content="hi")},
        {"event_name": "gen_ai.tool.message", "trace_id": TRACE, "span_id": SPAN, "body": _body(content="42 rows")},
        {
            "event_name": "gen_ai.choice",
            "trace_id": TRACE,
            "span_id": SPAN,
            "body": AnyValue(kvlist_value=KeyValueList(values=[_kv("message", _body(role="assistant", content="ok"))])),
        },
        {"event_name": "app.audit", "body": _text("unrelated")},
        {"event_name": "gen_ai.user.message", "body": _body(content="orphan")},
    )
    result = otlp.translate_logs(request, None, SourceConfig())
    (event,) = result.events
    assert event.content_of == f"otlp:{TRACE.hex()}:{SPAN.hex()}" and event.provider == "openai"
    assert event.input_messages == ["system: be nice", "user: hi", "tool: 42 rows"]
    assert event.output_messages == ["assistant: ok"]
    assert len(result.rejected) == 1 and "without trace_id/span_id" in result.error_message
    assert "accepted, not used: event 'app.audit' is not a GenAI content event" in result.error_message


def test_genai_token_usage_metrics_are_read_and_other_metrics_counted() -> None:
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    for key, value in RESOURCE.items():
        resource_metrics.resource.attributes.append(_kv(key, _text(str(value))))
    scope = resource_metrics.scope_metrics.add()
    usage = scope.metrics.add(name="gen_ai.client.token.usage")
    for token_type, total in (("input", 12), ("output", 5)):
        point = usage.histogram.data_points.add(sum=total, count=1)
        point.attributes.extend(
            [
                _kv("gen_ai.provider.name", _text("openai")),
                _kv("gen_ai.response.model", _text("gpt-4o")),
                _kv("gen_ai.token.type", _text(token_type)),
            ]
        )
    scope.metrics.add(name="http.client.duration").histogram.data_points.add(sum=1.0, count=1)
    result = otlp.translate_metrics(request, None, SourceConfig())
    assert result.token_usage == {
        ("agents/support-bot", "openai", "gpt-4o", "input"): 12,
        ("agents/support-bot", "openai", "gpt-4o", "output"): 5,
    }
    assert result.accepted == 2 and result.rejected == []
    assert (
        result.error_message
        == "1 data point(s): accepted, not used: metric 'http.client.duration' is not a GenAI metric"
    )


def test_logs_and_metrics_routes_need_a_sender_token_and_answer_partial_success(receiver: str) -> None:
    logs = _logs({"event_name": "app.audit", "body": _text("unrelated")}).SerializeToString()
    protobuf = {"content-type": "application/x-protobuf"}
    assert httpx.post(f"{receiver}/v1/logs", content=logs, headers=protobuf).status_code == 401
    reply = httpx.post(f"{receiver}/v1/logs", content=logs, headers={**protobuf, **AUTH})
    assert reply.status_code == 200
    answer = ExportLogsServiceResponse.FromString(reply.content)
    assert answer.partial_success.rejected_log_records == 0
    assert "event 'app.audit' is not a GenAI content event" in answer.partial_success.error_message
    metrics = ExportMetricsServiceRequest()
    metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="x").gauge.data_points.add(as_int=1)
    assert (
        httpx.post(f"{receiver}/v1/metrics", content=metrics.SerializeToString(), headers=protobuf).status_code == 401
    )
    reply = httpx.post(
        f"{receiver}/v1/metrics", content=to_json(metrics), headers={"content-type": "application/json", **AUTH}
    )
    assert reply.status_code == 200 and "not a GenAI metric" in reply.json()["partialSuccess"]["errorMessage"]
    assert (
        httpx.post(
            f"{receiver}/v1/metrics", content=b"{", headers={"content-type": "application/json", **AUTH}
        ).status_code
        == 400
    )
