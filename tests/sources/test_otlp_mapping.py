"""OTLP spans (GenAI + MCP semantic conventions) -> RawLlmEvent, without a network."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import SpanKind

from edges.intake import otlp
from edges.intake.config import SourceConfig
from runward.core.redaction import REDACTED
from tests.sources.otlp_util import chat_span, export_request, k8s_resource, mcp_call_span, to_otlp_json

RESOURCE = k8s_resource("agents", "support-bot", "support-bot-7d4b9c5f6-x2x7q")


def translate(
    request: object, sender: str | None = "10.244.1.17", config: SourceConfig | None = None
) -> otlp.Translation:
    body = request.SerializeToString()  # type: ignore[attr-defined]
    decoded = otlp.decode_request(body, "application/x-protobuf")
    return otlp.translate(decoded, sender, config or SourceConfig())


def test_chat_span_maps_models_tokens_and_attribution() -> None:
    (event,) = translate(export_request(RESOURCE, [chat_span(prompt="What time is it?")])).events
    assert event.operation == "chat" and event.provider == "openai"
    assert (event.request_model, event.response_model) == ("gpt-4o", "gpt-4o-2024-08-06")
    assert (event.input_tokens, event.output_tokens) == (42, 7)
    assert event.attribution.deployment == "agents/support-bot"
    assert event.attribution.pod == "support-bot-7d4b9c5f6-x2x7q"
    assert event.input_messages == ["user: What time is it?"]
    assert event.output_messages == ["assistant: It is 12:00."]
    assert event.event_id.startswith("otlp:") and len(event.event_id.split(":")[1]) == 32


def test_older_gen_ai_system_and_token_names_still_map() -> None:
    span = (
        "chat",
        SpanKind.CLIENT,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.prompt_tokens": 5,
        },
    )
    (event,) = translate(export_request(RESOURCE, [span])).events
    assert event.provider == "anthropic" and event.input_tokens == 5


def test_mcp_client_spans_map_and_server_spans_and_other_spans_are_ignored() -> None:
    spans = [
        mcp_call_span("search_docs", {"query": "rotate keys"}),
        (
            "tools/list",
            SpanKind.CLIENT,
            {"mcp.method.name": "tools/list", "server.address": "mcp.docs.example.com", "server.port": 443},
        ),
        ("initialize", SpanKind.CLIENT, {"mcp.method.name": "initialize", "mcp.server.name": "docs"}),
        (
            "tools/call search_docs",
            SpanKind.SERVER,
            {"mcp.method.name": "tools/call", "gen_ai.tool.name": "search_docs"},
        ),
        ("resources/read", SpanKind.CLIENT, {"mcp.method.name": "resources/read"}),
        ("GET /health", SpanKind.SERVER, {"http.request.method": "GET"}),
        ("embeddings", SpanKind.CLIENT, {"gen_ai.operation.name": "embeddings"}),
    ]
    result = translate(export_request(RESOURCE, spans))
    assert [e.operation for e in result.events] == ["execute_tool", "tools_list", "initialize"]
    call, listing, init = result.events
    assert call.tool_name == "search_docs" and call.tool_call_id == "7"
    assert call.tool_arguments == {"query": "rotate keys"}
    assert call.mcp_server == "mcp.docs.example.com:443" and listing.mcp_server == "mcp.docs.example.com:443"
    assert init.mcp_server == "docs"
    assert len(result.ignored) == 4 and result.rejected == []
    # Nothing is dropped silently: each ignored kind is counted in the partial_success warning.
    assert "1 span(s): accepted, not used: not a GenAI or MCP span" in result.error_message
    assert "MCP method 'resources/read'" in result.error_message


def test_secrets_in_prompts_and_arguments_are_redacted() -> None:
    spans = [
        chat_span(prompt="deploy with key sk-proj-abcdefghijklmnopqrstuvwx0123"),
        mcp_call_span("login", {"user": "ops", "password": "hunter2", "note": "token: ghp_" + "a" * 36}),
    ]
    chat, call = translate(export_request(RESOURCE, spans)).events
    assert chat.input_messages == [f"user: deploy with key {REDACTED}"]
    assert call.tool_arguments is not None and call.tool_arguments["password"] == REDACTED
    assert "ghp_" not in json.dumps(call.tool_arguments)


def test_capture_off_keeps_metadata_only() -> None:
    config = SourceConfig(capture_off=["agents/support-bot"])
    spans = [chat_span(prompt="hello"), mcp_call_span("search_docs", {"query": "x"})]
    chat, call = translate(export_request(RESOURCE, spans), config=config).events
    assert chat.input_messages == [] and chat.output_messages == [] and chat.request_model == "gpt-4o"
    assert call.tool_arguments is None and call.tool_name == "search_docs"


def test_attribution_falls_back_to_the_sender_map_then_rejects_with_a_reason() -> None:
    request = export_request({"service.name": "bare-agent"}, [chat_span(), chat_span()])
    mapped = translate(request, sender="10.244.3.3", config=SourceConfig(senders={"10.244.3.3": "agents/bare"}))
    assert [e.attribution.deployment for e in mapped.events] == ["agents/bare", "agents/bare"]
    rejected = translate(request, sender="10.244.9.9")
    assert rejected.events == [] and len(rejected.rejected) == 2
    assert "k8s.namespace.name" in rejected.error_message and "10.244.9.9" in rejected.error_message
    assert rejected.error_message.startswith("2 span(s):")


def test_pod_uid_alone_is_left_to_ingest_to_resolve() -> None:
    request = export_request({"k8s.pod.uid": "5b1c0e3a-0000-4000-8000-000000000001"}, [chat_span()])
    (event,) = translate(request).events
    assert event.attribution.deployment is None and event.attribution.pod_uid is not None


def test_invalid_k8s_names_reject_the_span() -> None:
    result = translate(export_request(k8s_resource("Agents", "Bad_Name"), [chat_span()]))
    assert len(result.rejected) == 1 and "DNS-1123" in result.rejected[0]


def test_otlp_json_with_hex_ids_decodes_to_the_same_events() -> None:
    request = export_request(RESOURCE, [chat_span()])
    from_json = otlp.translate(otlp.decode_request(to_otlp_json(request), "application/json"), None, SourceConfig())
    from_proto = translate(request)
    assert [e.event_id for e in from_json.events] == [e.event_id for e in from_proto.events]


def test_undecodable_bodies() -> None:
    with pytest.raises(otlp.OtlpDecodeError, match="protobuf"):
        otlp.decode_request(b"\xff\xff\xff", "application/x-protobuf")
    with pytest.raises(otlp.OtlpDecodeError, match="not JSON"):
        otlp.decode_request(b"{nope", "application/json")
    with pytest.raises(otlp.OtlpDecodeError, match="unsupported content type"):
        otlp.decode_request(b"", "text/plain")
