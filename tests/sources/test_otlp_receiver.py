"""The OTLP/HTTP receiver with the official SDK exporter, landing records on the real broker."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path
from typing import Any

import httpx
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from edges.intake import falco, tetragon
from edges.intake.config import SourceConfig
from edges.intake.otlp_receiver import create_app
from edges.intake.publish import RawPublisher
from edges.intake.sensorcommon import parse_json_items, translate_batch
from runward.control.broker import free_port
from runward.core.auth import TokenRegistry, parse_token_list
from runward.core.contracts import RawLlmEvent, RawSensorEvent
from runward.core.topics import RAW_LLM, RAW_SENSOR
from tests.kafka_reading import read_records
from tests.sources.otlp_util import chat_span, export_request, k8s_resource, mcp_call_span, to_otlp_json

SENSORS = Path(__file__).resolve().parents[1] / "data" / "bom" / "sensors"
SENDER_TOKEN = "otlp-test-sender-0123456789"
TOKENS = TokenRegistry(parse_token_list(f"agent-sidecar:{SENDER_TOKEN}:sender"))
AUTH = {"Authorization": f"Bearer {SENDER_TOKEN}"}


def post(url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    """Every intake request carries the sender token (the intake refuses anything else)."""
    return httpx.post(url, headers={**AUTH, **(headers or {})}, **kwargs)


def sdk_export(url: str, resource: dict[str, object], spans: list, compression: Compression | None = None) -> None:  # type: ignore[type-arg]
    provider = TracerProvider(resource=Resource.create(resource))  # type: ignore[arg-type]
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=compression, timeout=15, headers=AUTH)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("agent")
    for name, kind, attrs in spans:
        with tracer.start_as_current_span(name, kind=kind, attributes=attrs):
            pass
    provider.shutdown()


def unique_deployment() -> tuple[str, str]:
    return "agents", f"bot-{uuid.uuid4().hex[:8]}"


def test_sdk_export_lands_on_raw_llm_keyed_by_deployment(receiver: str, kafka_bootstrap: str) -> None:
    namespace, name = unique_deployment()
    sdk_export(
        receiver,
        k8s_resource(namespace, name, f"{name}-7d4b9c5f6-x2x7q"),
        [
            chat_span(prompt="my password is hunter2"),
            mcp_call_span("search_docs", {"q": "rotation"}),
            ("tools/list", SpanKind.CLIENT, {"mcp.method.name": "tools/list", "mcp.server.name": "docs"}),
        ],
        compression=Compression.Gzip,
    )
    records = read_records(
        kafka_bootstrap, RAW_LLM.name, lambda v: v["attribution"]["deployment"] == f"{namespace}/{name}", want=3
    )
    assert {key for key, _ in records} == {f"{namespace}/{name}"}
    events = {e.operation: e for e in (RawLlmEvent.model_validate(v) for _, v in records)}
    assert set(events) == {"chat", "execute_tool", "tools_list"}
    assert events["chat"].response_model == "gpt-4o-2024-08-06"
    assert events["chat"].input_messages == ["user: my password is [REDACTED]"]
    assert events["execute_tool"].tool_arguments == {"q": "rotation"}


def test_capture_off_agent_publishes_metadata_only(receiver: str, kafka_bootstrap: str) -> None:
    sdk_export(receiver, k8s_resource("agents", "quiet-agent"), [chat_span(prompt="private prompt")])
    (record,) = [
        v
        for _, v in read_records(
            kafka_bootstrap, RAW_LLM.name, lambda v: v["attribution"]["deployment"] == "agents/quiet-agent", 1
        )
    ]
    assert record["input_messages"] == [] and record["request_model"] == "gpt-4o"


def test_sender_mapping_attributes_spans_without_k8s_resource(receiver: str, kafka_bootstrap: str) -> None:
    marker = uuid.uuid4().hex
    sdk_export(receiver, {"service.name": "local"}, [chat_span(model=marker)])
    records = read_records(kafka_bootstrap, RAW_LLM.name, lambda v: v["request_model"] == marker, 1)
    assert [v["attribution"]["deployment"] for _, v in records] == ["agents/local-agent"]


def test_partial_success_names_rejected_spans_in_protobuf_and_json(receiver: str) -> None:
    good = export_request(k8s_resource("agents", "support-bot"), [chat_span()])
    bad = export_request(k8s_resource("Agents", "Not_Valid"), [chat_span(), chat_span()])
    good.resource_spans.extend(bad.resource_spans)
    reply = post(
        f"{receiver}/v1/traces", content=good.SerializeToString(), headers={"content-type": "application/x-protobuf"}
    )
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(reply.content)
    assert response.partial_success.rejected_spans == 2
    assert "DNS-1123" in response.partial_success.error_message
    reply = post(f"{receiver}/v1/traces", content=to_otlp_json(good), headers={"content-type": "application/json"})
    assert reply.status_code == 200 and reply.json()["partialSuccess"]["rejectedSpans"] in (2, "2")


def test_fully_accepted_request_has_no_partial_success(receiver: str) -> None:
    body = gzip.compress(export_request(k8s_resource("agents", "support-bot"), [chat_span()]).SerializeToString())
    reply = post(
        f"{receiver}/v1/traces",
        content=body,
        headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
    )
    assert reply.status_code == 200
    assert not ExportTraceServiceResponse.FromString(reply.content).HasField("partial_success")


def test_bad_requests_get_status_bodies(receiver: str) -> None:
    reply = post(f"{receiver}/v1/traces", content=b"\xff\xff\xff", headers={"content-type": "application/x-protobuf"})
    assert reply.status_code == 400
    assert "protobuf" in status_pb2.Status.FromString(reply.content).message
    reply = post(f"{receiver}/v1/traces", content=b"{}", headers={"content-type": "text/plain"})
    assert reply.status_code == 415
    reply = post(
        f"{receiver}/v1/traces",
        content=b"not gzip",
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert reply.status_code == 400 and "gzip" in reply.json()["message"]


def test_falco_and_tetragon_webhooks_publish_sensor_events(receiver: str, kafka_bootstrap: str) -> None:
    reply = post(f"{receiver}/v1/falco", content=(SENSORS / "falco_alerts.jsonl").read_bytes())
    assert reply.status_code == 200
    assert reply.json()["accepted"] == 4 and [r["index"] for r in reply.json()["rejected"]] == [4, 5]
    reply = post(f"{receiver}/v1/tetragon", content=(SENSORS / "tetragon_events.jsonl").read_bytes())
    assert reply.status_code == 200 and reply.json()["accepted"] == 6
    # The fixtures' own events (by their stable ids): other suites publish to the same topic.
    expected = {
        e.event_id
        for name, translate in (("falco_alerts.jsonl", falco.translate), ("tetragon_events.jsonl", tetragon.translate))
        for e in translate_batch(parse_json_items((SENSORS / name).read_bytes()), translate).events
    }
    # Other tests of the session may post the same fixtures (same ids): read them all, at least ours.
    records = read_records(kafka_bootstrap, RAW_SENSOR.name, lambda v: v["event_id"] in expected, want=1000, timeout=8)
    assert {value["event_id"] for _, value in records} == expected
    keys = {key for key, _ in records}
    assert "agents/support-bot" in keys and "node-b:9c1e7f0b2a44" in keys
    for _, value in records:
        RawSensorEvent.model_validate(value)


def test_broker_unavailable_is_a_retryable_503() -> None:
    from fastapi.testclient import TestClient

    dead = RawPublisher(f"127.0.0.1:{free_port()}", "test-dead-broker", overrides={"message.timeout.ms": 1500})
    try:
        client = TestClient(create_app(SourceConfig(), dead, tokens=TOKENS), headers=AUTH)
        body = export_request(k8s_resource("agents", "support-bot"), [chat_span()]).SerializeToString()
        reply = client.post("/v1/traces", content=body, headers={"content-type": "application/x-protobuf"})
        assert reply.status_code == 503 and reply.headers["retry-after"] == "5"
        assert "retry later" in status_pb2.Status.FromString(reply.content).message
    finally:
        dead.close(timeout_s=1)
