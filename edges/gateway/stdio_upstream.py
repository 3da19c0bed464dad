"""A stdio MCP server behind the streamable-HTTP gateway: the server side of streamable HTTP,
one server process per MCP session, answers as JSON.

`runward run --mcp NAME=COMMAND` gives the agent a URL, not a command: its MCP servers run on
the host, outside the runc jail, where the agent cannot start them or reach them but through
the gateway. The gateway (streamable_http.HttpGateway) relays to this app in-process (an httpx
ASGI transport), so every message is judged by the same GatewaySession as in the gateway's other
modes; this module only turns HTTP requests into lines on the server's stdin and back.

What the transport does not carry, it refuses rather than guesses: a server's own request to the
client (sampling, roots) is answered with a JSON-RPC error, its notifications are dropped (the
answers are JSON, not an SSE stream), a GET stream is not offered (405, as the specification
allows), and a session this process did not start is unknown (404: the client starts again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import IO, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

SESSION_HEADER = "mcp-session-id"
MAX_LINE = 64 * 1024 * 1024
# Each session is a server process on the host, outside the agent's jail: an agent that opens
# sessions without end must not be able to fill the host with them.
MAX_SESSIONS = 16
ANSWER_TIMEOUT_S = 120.0
STOP_GRACE_S = 1.5
METHOD_NOT_FOUND, INTERNAL_ERROR = -32601, -32603


class _Server:
    """One server process and the answers it owes, by request id."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.waiting: dict[str, asyncio.Future[Any]] = {}
        self.lock = asyncio.Lock()
        self.reader = asyncio.create_task(self._read())

    async def send(self, messages: Sequence[Any]) -> None:
        assert self.process.stdin is not None
        async with self.lock:
            for message in messages:
                self.process.stdin.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
            await self.process.stdin.drain()

    async def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            while line := await self.process.stdout.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    log.warning("the MCP server wrote a line that is not JSON (%d bytes); dropped", len(line))
                    continue
                await self._route(message)
        finally:
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(RuntimeError("the MCP server exited before answering"))

    async def _route(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        if "method" in message and "id" in message:  # the server's own request: not relayed
            await self.send(
                [
                    {
                        "jsonrpc": "2.0",
                        "id": message["id"],
                        "error": {
                            "code": METHOD_NOT_FOUND,
                            "message": "the Runward gateway does not relay a server's requests to the agent",
                        },
                    }
                ]
            )
        elif "method" not in message:
            future = self.waiting.pop(_key(message.get("id")), None)
            if future is not None and not future.done():
                future.set_result(message)

    async def stop(self) -> None:
        self.reader.cancel()
        process = self.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, OSError):
                if process.stdin is not None:
                    process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


class StdioUpstream:
    """The ASGI app: POST (messages in, answers out), DELETE (end the session), GET (405)."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        stderr: IO[Any] | int | None = None,
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        if not command:
            raise ValueError("the MCP server has no command")
        self.command = list(command)
        self.env = dict(env) if env is not None else None
        self.stderr = stderr
        self.answer_timeout_s = answer_timeout_s
        self.max_sessions = max_sessions
        self.servers: dict[str, _Server] = {}
        self.app = Starlette(routes=[Route("/mcp", self.handle, methods=["POST", "GET", "DELETE"])])

    async def handle(self, request: Request) -> Response:
        session_id = request.headers.get(SESSION_HEADER)
        if request.method == "GET":
            return Response(status_code=405, headers={"allow": "POST, DELETE"})
        if request.method == "DELETE":
            server = self.servers.pop(session_id or "", None)
            if server is not None:
                await server.stop()
            return Response(status_code=200 if server is not None else 404)
        try:
            message = json.loads(await request.body())
        except ValueError:
            return _error(None, 400, "the request body is not JSON")
        batch = message if isinstance(message, list) else [message]
        if session_id is None:
            opened = await self._open(batch)
            if isinstance(opened, Response):
                return opened
            session_id = opened
        server = self.servers.get(session_id)
        if server is None:
            return _error(None, 404, "unknown session: initialize again")
        if server.process.returncode is not None:
            self.servers.pop(session_id, None)
            return _error(None, 404, f"the MCP server of this session exited ({server.process.returncode})")
        loop = asyncio.get_running_loop()
        owed = {
            _key(m["id"]): loop.create_future()
            for m in batch
            if isinstance(m, dict) and "method" in m and m.get("id") is not None
        }
        server.waiting.update(owed)
        await server.send(batch)
        headers = {SESSION_HEADER: session_id}
        if not owed:
            return Response(status_code=202, headers=headers)
        try:
            answers = await asyncio.wait_for(asyncio.gather(*owed.values()), self.answer_timeout_s)
        except (TimeoutError, RuntimeError) as exc:
            for key in owed:
                server.waiting.pop(key, None)
            why = str(exc) or f"no answer in {self.answer_timeout_s:g}s"
            return _error(None, 502, f"the MCP server did not answer: {why}", headers)
        body = answers if isinstance(message, list) else answers[0]
        return JSONResponse(body, headers=headers)

    async def _open(self, batch: list[Any]) -> str | Response:
        """A new session with a server process of its own, or the error that says why not."""
        if not any(isinstance(m, dict) and m.get("method") == "initialize" for m in batch):
            return _error(None, 400, "no Mcp-Session-Id: the first request of a session is `initialize`")
        for ended in [sid for sid, s in self.servers.items() if s.process.returncode is not None]:
            self.servers.pop(ended)
        if len(self.servers) >= self.max_sessions:
            return _error(
                None, 503, f"{len(self.servers)} sessions are open, the most one agent may hold: end one (DELETE)"
            )
        session_id = secrets.token_hex(16)
        self.servers[session_id] = await self._start()
        return session_id

    async def _start(self) -> _Server:
        process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.stderr,
            env=self.env,
            limit=MAX_LINE,
        )
        return _Server(process)

    async def aclose(self) -> None:
        servers, self.servers = list(self.servers.values()), {}
        for server in servers:
            await server.stop()


def _key(request_id: Any) -> str:
    return json.dumps(request_id)


def _error(request_id: Any, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": INTERNAL_ERROR, "message": message}}
    return JSONResponse(body, status, headers=dict(headers or {}))
