"""Streamable-HTTP transport: the gateway listens where the agent expects its MCP server and
relays POST/GET/DELETE to the upstream server, inspecting every JSON-RPC message in JSON
bodies and in SSE streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from edges.gateway.session import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    GatewaySession,
    Outcome,
    Unparseable,
    parse_message,
)
from edges.gateway.sink import EventSink

log = logging.getLogger(__name__)

SESSION_HEADER = "mcp-session-id"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
}
_RESPONSE_HEADERS = {"mcp-session-id", "www-authenticate", "retry-after", "cache-control"}


@dataclass
class _Tracked:
    session: GatewaySession
    headers: dict[str, str] = field(default_factory=dict)  # replayed on the gateway's own requests


@dataclass
class SseEvent:
    data: str = ""
    event: str | None = None
    id: str | None = None
    retry: str | None = None

    def encode(self) -> bytes:
        lines = []
        if self.event:
            lines.append(f"event: {self.event}")
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.retry:
            lines.append(f"retry: {self.retry}")
        lines += [f"data: {line}" for line in self.data.split("\n")]
        return ("\n".join(lines) + "\n\n").encode()


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    current, data = SseEvent(), list[str]()
    async for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data or current.id is not None or current.event:
                current.data = "\n".join(data)
                yield current
            current, data = SseEvent(), list[str]()
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            current.event = value
        elif name == "id":
            current.id = value
        elif name == "retry":
            current.retry = value
    if data:
        current.data = "\n".join(data)
        yield current


class HttpGateway:
    def __init__(
        self,
        upstream: str,
        new_session: Callable[[], GatewaySession],
        sink: EventSink,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.upstream = upstream
        self.new_session = new_session
        self.sink = sink
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None))
        self.sessions: dict[str, _Tracked] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def app(self, path: str = "/mcp") -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            yield
            await self.aclose()

        return Starlette(routes=[Route(path, self.handle, methods=["POST", "GET", "DELETE"])], lifespan=lifespan)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.client.aclose()
        # Flushed here, in the app's shutdown: uvicorn re-raises SIGTERM after it.
        undelivered = await asyncio.to_thread(self.sink.close)
        if undelivered:
            log.warning("%d gateway records were still undelivered at exit", undelivered)

    def _tracked(self, session_id: str | None) -> _Tracked:
        tracked = self.sessions.get(session_id or "")
        if tracked is None:
            # A session this gateway has not seen (it restarted): record from here on.
            tracked = _Tracked(self.new_session())
            if session_id:
                self.sessions[session_id] = tracked
        return tracked

    async def handle(self, request: Request) -> Response:
        session_id = request.headers.get(SESSION_HEADER)
        tracked = self._tracked(session_id)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        tracked.headers.update(
            {k: v for k, v in headers.items() if k.lower() in {"authorization", "cookie", "mcp-protocol-version"}}
        )
        if request.method == "DELETE":
            self.sessions.pop(session_id or "", None)
            upstream = await self.client.request("DELETE", self.upstream, headers=headers)
            return Response(upstream.content, upstream.status_code, _reply_headers(upstream))
        if request.method == "GET":
            return await self._relay(tracked, self.client.build_request("GET", self.upstream, headers=headers), [])
        raw = await request.body()
        try:
            message = parse_message(raw)
        except Unparseable as exc:  # fail closed: refused and recorded, never forwarded
            outcome = tracked.session.refuse_unparseable(raw, str(exc))
            self._emit(outcome)
            return JSONResponse(_one_or_many(outcome.to_client, f"unparseable message: {exc}", PARSE_ERROR), 400)
        outcome = tracked.session.from_client(message)
        self._emit(outcome)
        if not outcome.to_server:
            if not outcome.to_client:  # a refused notification: nothing to answer but the refusal
                return JSONResponse(_one_or_many([], "invalid JSON-RPC notification", INVALID_REQUEST), 400)
            body = outcome.to_client if isinstance(message, list) and message else outcome.to_client[0]
            return JSONResponse(body)
        forward = outcome.to_server if isinstance(message, list) else outcome.to_server[0]
        upstream_request = self.client.build_request(
            "POST", self.upstream, headers=headers, content=json.dumps(forward).encode()
        )
        return await self._relay(tracked, upstream_request, outcome.to_client, bind=session_id is None)

    async def _relay(
        self, tracked: _Tracked, upstream_request: httpx.Request, early: list[Any], bind: bool = False
    ) -> Response:
        upstream = await self.client.send(upstream_request, stream=True)
        new_id = upstream.headers.get(SESSION_HEADER)
        if bind:
            self.sessions[new_id or ""] = tracked
        headers = _reply_headers(upstream)
        content_type = upstream.headers.get("content-type", "")
        if content_type.startswith("text/event-stream"):
            return StreamingResponse(
                self._stream(tracked, upstream, early),
                upstream.status_code,
                headers=headers,
                media_type="text/event-stream",
            )
        try:
            raw = await upstream.aread()
        finally:
            await upstream.aclose()
        if content_type.startswith("application/json") and raw:
            try:
                message = parse_message(raw)
            except Unparseable as exc:  # withheld from the agent, recorded
                outcome = tracked.session.refuse_unparseable(raw, str(exc), from_server=True)
                self._emit(outcome)
                replies = [*early, *outcome.to_client]
                return JSONResponse(_one_or_many(replies, f"unparseable answer from the MCP server: {exc}"), 502)
            outcome = self._from_server(tracked, message)
            replies = [*early, *outcome.to_client]
            body: Any = replies if isinstance(message, list) or len(replies) > 1 else (replies or [None])[0]
            return JSONResponse(body, upstream.status_code, headers)
        if early:  # only notifications went upstream (202): answer the refusals ourselves
            return JSONResponse(early if len(early) > 1 else early[0])
        return Response(raw, upstream.status_code, headers, media_type=content_type or None)

    async def _stream(self, tracked: _Tracked, upstream: httpx.Response, early: list[Any]) -> AsyncIterator[bytes]:
        try:
            for message in early:
                yield SseEvent(data=json.dumps(message), event="message").encode()
            async for event in parse_sse(upstream.aiter_lines()):
                if event.event not in (None, "message") or not event.data:
                    yield event.encode()
                    continue
                try:
                    message = parse_message(event.data)
                except Unparseable as exc:
                    outcome = tracked.session.refuse_unparseable(event.data, str(exc), from_server=True)
                    self._emit(outcome)
                else:
                    outcome = self._from_server(tracked, message)
                for index, reply in enumerate(outcome.to_client):
                    yield SseEvent(
                        data=json.dumps(reply), event=event.event, id=event.id if index == 0 else None
                    ).encode()
        finally:
            await upstream.aclose()

    def _from_server(self, tracked: _Tracked, message: Any) -> Outcome:
        outcome = tracked.session.from_server(message)
        self._emit(outcome)
        for own in outcome.to_server:
            task = asyncio.create_task(self._own_request(tracked, own))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return outcome

    async def _own_request(self, tracked: _Tracked, message: dict[str, Any]) -> None:
        """The gateway's re-list after a tools change, on its own POST in the same session."""
        session_id = next((sid for sid, t in self.sessions.items() if t is tracked and sid), None)
        headers = {
            **tracked.headers,
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
        }
        if session_id:
            headers[SESSION_HEADER] = session_id
        try:
            async with self.client.stream("POST", self.upstream, headers=headers, json=message) as upstream:
                if upstream.headers.get("content-type", "").startswith("text/event-stream"):
                    async for event in parse_sse(upstream.aiter_lines()):
                        if event.data:
                            self._from_server(tracked, parse_message(event.data))
                            if not tracked.session.awaiting(message["id"]):
                                break
                else:
                    self._from_server(tracked, parse_message(await upstream.aread()))
        except (httpx.HTTPError, Unparseable) as exc:
            log.warning("gateway re-list of tools failed: %s", exc)

    def _emit(self, outcome: Outcome) -> None:
        for event in outcome.events:
            self.sink.emit(event)
        for record in outcome.dead_letters:
            self.sink.dead_letter(record)
        for evidence in outcome.evidence:
            self.sink.evidence(evidence)


def _one_or_many(replies: list[Any], reason: str, code: int = INTERNAL_ERROR) -> Any:
    if not replies:
        return {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": code, "message": f"Refused by the Runward tool gateway: {reason}"},
        }
    return replies if len(replies) > 1 else replies[0]


def _reply_headers(upstream: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in upstream.headers.items() if k.lower() in _RESPONSE_HEADERS}
