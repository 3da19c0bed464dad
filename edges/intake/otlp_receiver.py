"""OTLP/HTTP receiver for GenAI/MCP traces, logs and metrics, plus webhook intake for Falco and Tetragon.

POST /v1/traces     application/x-protobuf | application/json (optionally gzip), answered per
                    the OTLP/HTTP spec: 200 + ExportTraceServiceResponse (partial_success counts
                    rejected spans and names, as a warning, what was accepted but not used),
                    400 + google.rpc.Status for undecodable bodies (not retryable), 415 for other
                    media types, 503 when the broker did not take the records (retryable).
POST /v1/logs       the same for GenAI events sent as log records (content of a call: one record
                    per call, tied to its span by `content_of`).
POST /v1/metrics    the same for metrics: GenAI token usage is read and logged per Deployment and
                    model; other metrics are counted in the partial_success warning.
POST /v1/falco      Falco http_output alerts (object, array or JSON lines)
POST /v1/tetragon   Tetragon export events (JSON lines or array)
POST /v1/k8s-audit  Kubernetes audit webhook backend: an audit.k8s.io/v1 EventList (or Events)

Every intake endpoint is authenticated (edges/intake/guard.py): a sender token or mutual TLS,
401 otherwise; 429 when a sender is over its budget; 413 as soon as a body (chunked or not,
compressed or not) passes the cap, before it is read whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from edges.intake import falco, otlp, tetragon
from edges.intake.config import SourceConfig
from edges.intake.guard import IntakeRefused, SenderGuard, read_bounded
from edges.intake.publish import RawPublisher
from edges.intake.sensorcommon import Batch, parse_json_items, sensor_key, translate_batch
from runward.core.auth import TokenRegistry, load_tokens
from runward.core.config import Settings
from runward.core.contracts import K8sAuditEvent, RawSensorEvent
from runward.core.metrics import INTAKE_REQUESTS, serve_metrics
from runward.core.redaction import redact_audit_event
from runward.core.topics import RAW_K8S, RAW_LLM, RAW_SENSOR

log = logging.getLogger(__name__)

_GRPC_INVALID_ARGUMENT, _GRPC_UNAVAILABLE = 3, 14
_Export = TypeVar("_Export", bound=Message)


def create_app(
    config: SourceConfig,
    publisher: RawPublisher,
    close_publisher: bool = False,
    *,
    tokens: TokenRegistry | None = None,
    mtls: bool = False,
) -> FastAPI:
    """The receiver app. `tokens` is the shared token configuration (only its sender entries
    are used); `mtls` says the server verifies client certificates, so a request without a
    bearer token has already proved its sender. With neither, every intake request gets 401."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if close_publisher:
            # Here, not after uvicorn.run: uvicorn re-raises SIGTERM once the app has shut down.
            undelivered = await asyncio.to_thread(publisher.close)
            if undelivered:
                log.warning("%d records were still undelivered at exit", undelivered)

    app = FastAPI(title="Runward OTLP receiver", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.intake = _Intake(
        config,
        publisher,
        SenderGuard(
            tokens or TokenRegistry([]),
            mtls=mtls,
            requests_per_s=config.requests_per_s,
            request_burst=config.request_burst,
            bytes_per_s=config.bytes_per_s,
            byte_burst=config.byte_burst,
        ),
    )
    app.add_exception_handler(IntakeRefused, _refused)  # type: ignore[arg-type]
    app.add_api_route("/v1/traces", traces, methods=["POST"])
    app.add_api_route("/v1/logs", logs, methods=["POST"])
    app.add_api_route("/v1/metrics", metrics, methods=["POST"])
    app.add_api_route("/v1/falco", falco_alerts, methods=["POST"])
    app.add_api_route("/v1/tetragon", tetragon_events, methods=["POST"])
    app.add_api_route("/v1/k8s-audit", k8s_audit, methods=["POST"])
    app.add_api_route("/healthz", healthz, methods=["GET"])
    return app


@dataclass
class _Intake:
    config: SourceConfig
    publisher: RawPublisher
    guard: SenderGuard


def _intake(request: Request) -> _Intake:
    intake: _Intake = request.app.state.intake
    return intake


def _admit(request: Request) -> tuple[str, int]:
    """Authenticate the sender and charge its budget: (sender, declared body size)."""
    intake = _intake(request)
    client = request.client.host if request.client else "unknown"
    sender = intake.guard.authenticate(request.headers.get("authorization"), client)
    limit = intake.config.max_body_bytes
    length = request.headers.get("content-length", "")
    declared = int(length) if length.isdigit() else 0
    if declared > limit:  # refuse before reading a byte of it
        raise IntakeRefused(413, f"body larger than {limit} bytes; export smaller batches")
    intake.guard.admit(sender, declared)
    return sender, declared


async def _read(request: Request, sender: str, declared: int) -> bytes:
    """The body under the hard cap, streamed (chunked included) and decompressed as it comes."""
    intake = _intake(request)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    body = await read_bounded(request.stream(), encoding, intake.config.max_body_bytes)
    if not declared:
        intake.guard.charge_bytes(sender, len(body))
    return body


async def _admitted_body(request: Request) -> bytes:
    return await _read(request, *_admit(request))


async def _refused(request: Request, exc: IntakeRefused) -> Response:
    if request.url.path in _OTLP_PATHS:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        return _status(exc.status, str(exc), media != otlp.PROTOBUF, headers=exc.headers)
    return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=exc.headers)


_OTLP_PATHS = {"/v1/traces", "/v1/logs", "/v1/metrics"}


async def _otlp_body(request: Request, kind: type[_Export]) -> _Export | Response:
    """The decoded export request, or the OTLP error response to send instead."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    sender_name, declared = _admit(request)
    if media not in {otlp.PROTOBUF, otlp.JSON}:
        return _status(
            415, f"unsupported content type {content_type!r}; send {otlp.PROTOBUF} or {otlp.JSON}", json_body=True
        )
    body = await _read(request, sender_name, declared)
    try:
        return otlp.decode_export(body, content_type, kind)
    except otlp.OtlpDecodeError as exc:
        return _status(400, str(exc), media == otlp.JSON)


def _json_answer(request: Request) -> bool:
    """Answer in the encoding the client sent."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == otlp.JSON


async def _publish_translation(request: Request, result: otlp.Translation) -> Response | None:
    sender = request.client.host if request.client else None
    items = [(RAW_LLM, e.attribution.deployment or f"otlp:{sender}", e) for e in result.events]
    failure = await _deliver(_intake(request).publisher, items)
    if failure:
        return _status(
            503,
            f"records not accepted by Kafka, retry later: {failure}",
            _json_answer(request),
            headers={"Retry-After": "5"},
        )
    if result.rejected or result.ignored:
        log.info("OTLP %s from %s: %s", request.url.path, sender, result.error_message)
    return None


async def traces(request: Request) -> Response:
    export = await _otlp_body(request, ExportTraceServiceRequest)
    if isinstance(export, Response):
        return export
    sender = request.client.host if request.client else None
    result = otlp.translate(export, sender, _intake(request).config)
    failed = await _publish_translation(request, result)
    if failed:
        return failed
    response = ExportTraceServiceResponse()
    if result.rejected or result.ignored:
        response.partial_success.rejected_spans = len(result.rejected)
        response.partial_success.error_message = result.error_message
    return _message(200, response, _json_answer(request))


async def logs(request: Request) -> Response:
    export = await _otlp_body(request, ExportLogsServiceRequest)
    if isinstance(export, Response):
        return export
    sender = request.client.host if request.client else None
    result = otlp.translate_logs(export, sender, _intake(request).config)
    failed = await _publish_translation(request, result)
    if failed:
        return failed
    response = ExportLogsServiceResponse()
    if result.rejected or result.ignored:
        response.partial_success.rejected_log_records = len(result.rejected)
        response.partial_success.error_message = result.error_message
    return _message(200, response, _json_answer(request))


async def metrics(request: Request) -> Response:
    export = await _otlp_body(request, ExportMetricsServiceRequest)
    if isinstance(export, Response):
        return export
    sender = request.client.host if request.client else None
    result = otlp.translate_metrics(export, sender, _intake(request).config)
    for (deployment, provider, model, token_type), tokens in result.token_usage.items():
        log.info("GenAI token usage %s %s/%s %s: %d", deployment, provider, model, token_type, tokens)
    response = ExportMetricsServiceResponse()
    if result.rejected or result.ignored:
        response.partial_success.rejected_data_points = len(result.rejected)
        response.partial_success.error_message = result.error_message
        log.info("OTLP /v1/metrics from %s: %s", sender, result.error_message)
    return _message(200, response, _json_answer(request))


async def falco_alerts(request: Request) -> Response:
    return await _sensor_intake(request, falco.translate)


async def tetragon_events(request: Request) -> Response:
    return await _sensor_intake(request, tetragon.translate)


async def k8s_audit(request: Request) -> Response:
    """The API server's audit webhook: each Event goes to runward.raw.k8s, keyed by auditID."""

    def records(items: list[Any]) -> tuple[list[Any], list[tuple[int, str]]]:
        events, rejected = audit_events(items)
        return [(RAW_K8S, str(e.event.get("auditID", "")), e) for e in events], rejected

    return await _json_intake(request, records)


async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def audit_events(items: list[Any]) -> tuple[list[K8sAuditEvent], list[tuple[int, str]]]:
    """Flatten EventLists; keep audit.k8s.io/v1 Events, name the reason for anything else."""
    events: list[K8sAuditEvent] = []
    rejected: list[tuple[int, str]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            rejected.append((index, "not a JSON object"))
            continue
        inner = item.get("items") if item.get("kind") == "EventList" else [item]
        if not isinstance(inner, list):
            rejected.append((index, "an EventList's items must be a list of audit.k8s.io/v1 Events"))
            continue
        for event in inner:
            if (
                isinstance(event, dict)
                and event.get("apiVersion") == "audit.k8s.io/v1"
                and event.get("kind") == "Event"
            ):
                # Request/response objects may be Secrets or carry credentials: redacted here,
                # before raw.k8s (and ingest's parked-audit table) ever holds them.
                events.append(K8sAuditEvent(event=redact_audit_event(event)[0]))
            else:
                rejected.append((index, "not an audit.k8s.io/v1 Event or EventList"))
    return events, rejected


async def _sensor_intake(request: Request, translate: Callable[[dict[str, Any]], RawSensorEvent]) -> Response:
    def records(items: list[Any]) -> tuple[list[Any], list[tuple[int, str]]]:
        batch: Batch = translate_batch(items, translate)
        return [(RAW_SENSOR, sensor_key(e), e) for e in batch.events], batch.rejected

    return await _json_intake(request, records)


async def _json_intake(
    request: Request,
    records: Callable[[list[Any]], tuple[list[Any], list[tuple[int, str]]]],
) -> Response:
    """A JSON webhook: parse the body, turn its items into (topic, key, record), publish them, and
    answer how many were accepted and which were rejected and why (503 when Kafka did not take them)."""
    body = await _admitted_body(request)
    try:
        items = parse_json_items(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return JSONResponse({"error": f"body is not JSON, a JSON array or JSON lines: {exc}"}, status_code=400)
    accepted, rejected = records(items)
    failure = await _deliver(_intake(request).publisher, accepted)
    if failure:
        return JSONResponse(
            {"error": f"records not accepted by Kafka, retry later: {failure}"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"accepted": len(accepted), "rejected": [{"index": i, "reason": r} for i, r in rejected]})


async def _deliver(publisher: RawPublisher, items: list[Any]) -> str | None:
    try:
        errors = await publisher.send_all(items)
    except TimeoutError:
        return "delivery timed out"
    failed = [e for e in errors if e]
    return f"{len(failed)} of {len(errors)} records failed: {failed[0]}" if failed else None


def _message(status: int, message: Message, json_body: bool, headers: dict[str, str] | None = None) -> Response:
    if json_body:
        return Response(
            json_format.MessageToJson(message, indent=None), status_code=status, media_type=otlp.JSON, headers=headers
        )
    return Response(message.SerializeToString(), status_code=status, media_type=otlp.PROTOBUF, headers=headers)


def _status(status: int, text: str, json_body: bool, headers: dict[str, str] | None = None) -> Response:
    code = _GRPC_UNAVAILABLE if status == 503 else _GRPC_INVALID_ARGUMENT
    return _message(status, status_pb2.Status(code=code, message=text), json_body, headers)


def serve(
    settings: Settings,
    port: int = 4318,
    config: SourceConfig | None = None,
    host: str = "127.0.0.1",
    tls: TlsFiles | None = None,
) -> None:
    """Run the receiver in the foreground until SIGINT/SIGTERM. Senders authenticate with a
    sender token from the shared token configuration, or (with `tls.client_ca`) a client
    certificate the TLS handshake verifies."""
    import ssl

    import uvicorn

    tokens = load_tokens(settings)
    publisher = RawPublisher(settings, "runward-otlp-receiver")
    mtls = bool(tls and tls.client_ca)
    app = create_app(config or SourceConfig(), publisher, close_publisher=True, tokens=tokens, mtls=mtls)
    app.middleware("http")(_RequestCounter({getattr(r, "path", "") for r in app.routes}))
    serve_metrics(settings.metrics_port, settings.metrics_host)
    options: dict[str, Any] = {}
    if tls is not None:
        options = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
        if tls.client_ca:
            options |= {"ssl_ca_certs": str(tls.client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    uvicorn.run(app, host=host, port=port, log_level="info", **options)


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None


class _RequestCounter:
    """Requests by route and status on the metrics port; unknown paths count as one label."""

    def __init__(self, routes: set[str]) -> None:
        self._routes = routes

    async def __call__(self, request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        route = request.url.path if request.url.path in self._routes else "unmatched"
        INTAKE_REQUESTS.labels(route, str(response.status_code)).inc()
        return response
