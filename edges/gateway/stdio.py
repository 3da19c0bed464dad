"""stdio transport: the agent spawns the gateway instead of the server; the gateway spawns
the server and relays newline-delimited JSON-RPC both ways (MCP stdio transport)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from edges.gateway.session import GatewaySession, Outcome
from edges.gateway.sink import EventSink

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024 * 1024
SHUTDOWN_GRACE_S = 1.5  # under the MCP SDK client's 2 s before it sends SIGTERM


class _LineWriter:
    """Serialises whole lines onto one pipe: two relay directions may write to the same side."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._lock = asyncio.Lock()

    async def write(self, messages: Sequence[Any]) -> None:
        if not messages:
            return
        async with self._lock:
            for message in messages:
                raw = message if isinstance(message, bytes) else json.dumps(message, separators=(",", ":")).encode()
                self._writer.write(raw + b"\n")
            await self._writer.drain()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()


async def _stdio_streams() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", 0))
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(1, "wb", 0))
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, writer


async def run_stdio(  # noqa: C901 - to split (issue 8)
    command: Sequence[str], session: GatewaySession, sink: EventSink, env: dict[str, str] | None = None
) -> int:
    """Relay until the client closes stdin or the server exits; return the server's exit code."""
    server = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=sys.stderr,
        env=env,
        limit=MAX_LINE,
    )
    assert server.stdin is not None and server.stdout is not None
    client_in, client_out_raw = await _stdio_streams()
    client_out, server_in = _LineWriter(client_out_raw), _LineWriter(server.stdin)

    async def deliver(outcome: Outcome) -> None:
        for event in outcome.events:
            sink.emit(event)
        await server_in.write(outcome.to_server)
        await client_out.write(outcome.to_client)

    async def client_to_server() -> None:
        while line := await client_in.readline():
            if not line.strip():
                continue
            message = _parse(line)
            if message is _NOT_JSON:
                await server_in.write([line.rstrip(b"\n")])  # not JSON: not ours to judge
                continue
            await deliver(session.from_client(message))
        server_in.close()  # MCP stdio shutdown: the client closed, close the server's stdin

    async def server_to_client() -> None:
        while line := await server.stdout.readline():  # type: ignore[union-attr]
            if not line.strip():
                continue
            message = _parse(line)
            if message is _NOT_JSON:
                await client_out.write([line.rstrip(b"\n")])
                continue
            await deliver(session.from_server(message))

    upstream = asyncio.create_task(client_to_server())
    downstream = asyncio.create_task(server_to_client())
    # MCP clients end a stdio server with SIGTERM after a grace period: stop cleanly so the
    # records of the last calls are flushed instead of lost with the process.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    stop = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({upstream, downstream, stop}, return_when=asyncio.FIRST_COMPLETED)
        if upstream.done() and not downstream.done() and not stop.done():
            # Let the server finish answering what it already received, then stop it.
            await asyncio.wait({downstream, stop}, timeout=SHUTDOWN_GRACE_S, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (upstream, downstream, stop):
            task.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await _stop(server)
        client_out.close()
    return server.returncode if server.returncode is not None else 0


async def _stop(server: asyncio.subprocess.Process) -> None:
    if server.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if server.stdin is not None:
            server.stdin.close()
    try:
        await asyncio.wait_for(server.wait(), SHUTDOWN_GRACE_S)
        return
    except TimeoutError:
        pass
    with contextlib.suppress(ProcessLookupError):
        server.terminate()
    try:
        await asyncio.wait_for(server.wait(), SHUTDOWN_GRACE_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            server.kill()
        await server.wait()


_NOT_JSON = object()


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        log.warning("non-JSON line relayed unchanged (%d bytes)", len(line))
        return _NOT_JSON
