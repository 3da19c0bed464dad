"""An agent using the real mcp SDK client, traced by the OpenTelemetry SDK, calling
mcp-server-time through the Runward gateway (stdio). Prints the client's spans as an OTLP
ExportTraceServiceRequest (hex protobuf) on stdout, so the test can feed them to the intake.

usage: mcp_agent.py KAFKA DEPLOYMENT
"""

from __future__ import annotations

import sys

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


async def call(kafka: str, deployment: str) -> None:
    gateway = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "edges.gateway",
            "--deployment",
            deployment,
            "--server-name",
            "time",
            "--kafka",
            kafka,
            "--",
            sys.executable,
            "-m",
            "mcp_server_time",
            "--local-timezone",
            "UTC",
        ],
    )
    with anyio.fail_after(60):
        async with stdio_client(gateway) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool("get_current_time", {"timezone": "Europe/Paris"})


def main(kafka: str, deployment: str) -> None:
    namespace, _, name = deployment.partition("/")
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"k8s.namespace.name": namespace, "k8s.deployment.name": name}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    anyio.run(call, kafka, deployment)
    provider.shutdown()
    print(encode_spans(exporter.get_finished_spans()).SerializeToString().hex())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
