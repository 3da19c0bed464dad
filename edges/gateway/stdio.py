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

from edges.gateway.session import GatewaySession, Outcome, Unparseable, parse_message
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


async def run_stdio(
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
    client_in, client_out = await _stdio_streams()
    relay = _Relay(session, sink, client_out=_LineWriter(client_out), server_in=_LineWriter(server.stdin))
    upstream = asyncio.create_task(relay.client_to_server(client_in))
    downstream = asyncio.create_task(relay.server_to_client(server.stdout))
    try:
        await _until_done(upstream, downstream)
    finally:
        await _stop(server)
        relay.client_out.close()
    return server.returncode if server.returncode is not None else 0


class _Relay:
    """Both directions of one stdio session. Every line is parsed strictly; a line that cannot
    be read is refused and recorded, never passed on (fail closed, whatever the policy mode)."""

    def __init__(self, session: GatewaySession, sink: EventSink, client_out: _LineWriter, server_in: _LineWriter):
        self.session, self.sink = session, sink
        self.client_out, self.server_in = client_out, server_in

    async def deliver(self, outcome: Outcome) -> None:
        for event in outcome.events:
            self.sink.emit(event)
        for record in outcome.dead_letters:
            self.sink.dead_letter(record)
        for evidence in outcome.evidence:
            self.sink.evidence(evidence)
        await self.server_in.write(outcome.to_server)
        await self.client_out.write(outcome.to_client)

    async def client_to_server(self, client_in: asyncio.StreamReader) -> None:
        while line := await client_in.readline():
            if not line.strip():
                continue
            try:
                message = parse_message(line)
            except Unparseable as exc:
                log.warning("refused an unparseable client line (%d bytes): %s", len(line), exc)
                await self.deliver(self.session.refuse_unparseable(line, str(exc)))
                continue
            await self.deliver(self.session.from_client(message))
        self.server_in.close()  # MCP stdio shutdown: the client closed, close the server's stdin

    async def server_to_client(self, server_out: asyncio.StreamReader) -> None:
        while line := await server_out.readline():
            if not line.strip():
                continue
            try:
                message = parse_message(line)
            except Unparseable as exc:
                log.warning("withheld an unparseable server line (%d bytes): %s", len(line), exc)
                await self.deliver(self.session.refuse_unparseable(line, str(exc), from_server=True))
                continue
            await self.deliver(self.session.from_server(message))


async def _until_done(upstream: asyncio.Task[None], downstream: asyncio.Task[None]) -> None:
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
