"""The real mcp SDK (2.x) client, traced: its spans name the tool only in the span name, and it
puts W3C trace context in `_meta.traceparent`, which the gateway keeps, so the gateway's record
and the SDK's span are the same call in the same trace with the same tool identity."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from edges.intake import otlp
from edges.intake.config import SourceConfig
from runward.core.contracts import RawLlmEvent, SourceRef
from runward.core.topics import RAW_LLM
from services.ingest import domain
from tests.kafka_reading import read_records

ROOT = Path(__file__).resolve().parents[2]
_SRC = SourceRef(topic="runward.raw.llm", partition=0, offset=0)


@pytest.mark.timeout(180)
def test_mcp_sdk_spans_and_the_gateway_record_are_one_call(kafka_bootstrap: str) -> None:
    deployment = f"agents/mcp-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-m", "tests.sources.agents.mcp_agent", kafka_bootstrap, deployment],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stderr
    request = ExportTraceServiceRequest.FromString(bytes.fromhex(done.stdout.strip().splitlines()[-1]))
    translated = otlp.translate(request, None, SourceConfig())
    [sdk_call] = [e for e in translated.events if e.operation == "execute_tool"]
    assert sdk_call.tool_name == "get_current_time"  # from the span name `MCP send tools/call <tool>`
    assert sdk_call.mcp_server is None  # stdio: the span does not say which server
    gateway = [
        RawLlmEvent.model_validate(v)
        for _, v in read_records(
            kafka_bootstrap, RAW_LLM.name, lambda v: v["attribution"]["deployment"] == deployment, 3
        )
    ]
    [gateway_call] = [e for e in gateway if e.operation == "execute_tool"]
    # The gateway kept the client's traceparent: same trace, same span as the SDK's call span.
    assert (gateway_call.trace_id, gateway_call.span_id) == (sdk_call.trace_id, sdk_call.span_id)
    # Through ingest both are one tool: the gateway's tools/list names the server for the SDK span.
    registry: dict[str, Any] = {}
    keys = []
    for event in sorted(gateway, key=lambda e: e.ts) + [sdk_call]:
        keys += [e.behaviour.key for e in domain.enrich_llm(registry, event, _SRC) if e.behaviour is not None]
    assert keys.count("tool:time/get_current_time") == 2
