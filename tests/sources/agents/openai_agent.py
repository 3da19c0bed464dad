"""An agent instrumented as a user would: the openai client, a real GenAI instrumentation
(`v2` = opentelemetry-instrumentation-openai-v2, `openllmetry` = traceloop's
opentelemetry-instrumentation-openai) and the official OTLP/HTTP exporters for traces, logs and
metrics, talking to a local fake OpenAI server and to the Runward receiver.

usage: openai_agent.py v2|openllmetry RECEIVER_URL TOKEN NAMESPACE DEPLOYMENT PROMPT
"""

from __future__ import annotations

import sys

from opentelemetry import _logs, metrics, trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.sources.agents import fake_openai


def main(flavour: str, receiver: str, token: str, namespace: str, deployment: str, prompt: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    resource = Resource.create(
        {"service.name": deployment, "k8s.namespace.name": namespace, "k8s.deployment.name": deployment}
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver}/v1/traces", headers=headers, timeout=15))
    )
    trace.set_tracer_provider(tracer_provider)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{receiver}/v1/logs", headers=headers, timeout=15))
    )
    _logs.set_logger_provider(logger_provider)
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{receiver}/v1/metrics", headers=headers, timeout=15),
        export_interval_millis=3_600_000,  # exported once, at shutdown
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    if flavour == "v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    else:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor  # type: ignore[no-redef]
    OpenAIInstrumentor().instrument()

    import openai

    server = fake_openai.start()
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="sk-test-not-real")
    tracer = trace.get_tracer("agent")
    with tracer.start_as_current_span(
        "invoke_agent planner", attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
    ):
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "system", "content": "You are a planner."}, {"role": "user", "content": prompt}],
            tools=[{"type": "function", "function": {"name": "run_query", "parameters": {"type": "object"}}}],
        )
    server.shutdown()
    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:7])
