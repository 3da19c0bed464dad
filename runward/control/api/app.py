"""Assembly of the status API: auth on every /v1 route, error bodies that never echo input."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import compile_path

from runward.control.api.auth import authenticate, load_tokens
from runward.control.api.publisher import KafkaPublisher, Publisher
from runward.control.api.routes import (
    agents,
    evidence,
    history,
    promotions,
    proofs,
    readiness,
    stages,
    stories,
    story_lifecycle,
)
from runward.control.api.schemas import ErrorBody, Liveness
from runward.core.config import Settings
from runward.core.config import settings as default_settings
from runward.core.metrics import API_LATENCY, API_REQUESTS
from runward.core.store import Store

log = logging.getLogger(__name__)

DESCRIPTION = """\
Status API of Runward for the platform team: health of the pipeline stages, each agent's
runtime artifacts (APD, CycloneDX AI-BOM, policies, reconciliation), attack stories, and the
manual promotion gate of Observe -> Audit -> Enforce.

Every `/v1` route needs `Authorization: Bearer <token>`; tokens and their role (viewer or
approver) come from `RUNWARD_API_TOKENS` or `RUNWARD_TOKENS_FILE`.
"""


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's default body quotes the rejected input back; that input can be a header or a
    # body carrying a secret, so only where and why are returned.
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    return JSONResponse(jsonable_encoder({"detail": errors}), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _store_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    # The driver's message can carry SQL and connection details: log it, do not serve it.
    log.error("store query failed: %s", exc)
    return JSONResponse(
        {"detail": "the store (database) is unavailable or not migrated (run `runward db upgrade`); see the API log"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"detail": "internal error; see the API log"}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR
    )


def create_app(
    settings: Settings | None = None, store: Store | None = None, publisher: Publisher | None = None
) -> FastAPI:
    """Build the API. Missing collaborators come from settings: the store at `settings.db_url`
    (schema must be migrated), a Kafka publisher for `settings.kafka` (connects on first use)."""
    config = settings or default_settings()
    tokens = load_tokens(config)  # bad token configuration fails here, at startup
    if not tokens:
        log.warning("no API tokens configured: every request will get 401 until RUNWARD_API_TOKENS is set")
    owns_store = store is None
    app_store = store or Store(config.db_url)
    app_publisher: Publisher = publisher or KafkaPublisher(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        app_publisher.close()
        if owns_store:
            app_store.engine.dispose()

    app = FastAPI(title="Runward status API", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = config
    app.state.tokens = tokens
    app.state.store = app_store
    app.state.publisher = app_publisher

    exception_handlers: dict[Any, Any] = {
        RequestValidationError: _validation_error,
        SQLAlchemyError: _store_unavailable,
        Exception: _internal_error,
    }
    for exc_class, handler in exception_handlers.items():
        app.add_exception_handler(exc_class, handler)

    @app.get(
        "/healthz",
        response_model=Liveness,
        tags=["liveness"],
        summary="Liveness probe",
        description="Unauthenticated; says only that the process serves requests.",
    )
    def healthz() -> Liveness:
        return Liveness()

    unauthorized: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorBody, "description": "missing, unknown or unconfigured bearer token"},
        422: {"description": "invalid path or query parameter"},
    }
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authenticate)], responses=unauthorized)
    for module in (stages, agents, evidence, stories, story_lifecycle, promotions, proofs, readiness, history):
        v1.include_router(module.router)
    app.include_router(v1)

    @app.get(
        "/metrics",
        tags=["metrics"],
        summary="Prometheus metrics",
        description="Request counters and latency of this API process (Prometheus text format); needs a token.",
        dependencies=[Depends(authenticate)],
        responses=unauthorized,
    )
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.middleware("http")(_RequestCounter(app))
    return app


class _RequestCounter:
    """Counts requests by route template, not path: a path carries agent names and would
    explode the label set. Templates come from the OpenAPI paths (FastAPI nests included
    routers, so the matched route object only knows its own suffix)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._templates: list[tuple[Any, str]] | None = None

    def _route(self, path: str) -> str:
        if self._templates is None:
            self._templates = [(compile_path(t)[0], t) for t in self._app.openapi()["paths"]]
        return next((template for regex, template in self._templates if regex.match(path)), "unmatched")

    async def __call__(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = self._route(request.url.path)
        API_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        API_LATENCY.labels(route).observe(time.perf_counter() - started)
        return response


def serve(settings: Settings | None = None) -> None:
    """Run the API with uvicorn on settings.api_host:settings.api_port until interrupted."""
    import uvicorn

    config = settings or default_settings()
    uvicorn.run(create_app(config), host=config.api_host, port=config.api_port, log_level="info")
