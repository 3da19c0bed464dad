"""The tool gateway `runward run` starts for the agent: one per MCP server it names (`--mcp
NAME=COMMAND`), each streamable HTTP in front of that stdio server, on the host.

The contract with the agent's code is one environment variable per server,
`RUNWARD_MCP_<NAME>_URL` (NAME upper-cased, anything not a letter or digit made `_`): the same
code runs observed (gateway on 127.0.0.1, observe: every call recorded) and enforced (gateway on
the jail's host-side veth address, the policy bundle's tool policy at the bundle's mode). The
servers run here, outside the jail, and are spawned by the gateway: the agent's rootfs does not
hold them, so the gateway is the only way to them.

Nothing fails open: a server command that is not on this host, an address that cannot be bound
or a gateway that does not answer within `START_TIMEOUT_S` is an error before the workload runs.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from edges.gateway.bundle import FixedBundle
from edges.gateway.session import AgentIdentity, GatewaySession
from edges.gateway.sink import EventSink
from edges.gateway.stdio_upstream import StdioUpstream
from edges.gateway.streamable_http import HttpGateway
from runward.core.contracts import AuditEvidence, DeadLetter, PolicyBundle, RawLlmEvent

START_TIMEOUT_S = 15.0
PATH = "/mcp"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class GatewayError(RuntimeError):
    """The gateway could not be started (says what to do)."""


@dataclass(frozen=True)
class McpServer:
    """`--mcp NAME=COMMAND`: the name the agent's configuration and the tool policy use."""

    name: str
    command: tuple[str, ...]

    @classmethod
    def parse(cls, spec: str) -> McpServer:
        name, sep, command = spec.partition("=")
        if not sep or not _NAME.match(name) or not command.strip():
            raise ValueError(f"--mcp {spec!r}: give NAME=COMMAND, e.g. time='python -m mcp_server_time'")
        return cls(name, tuple(shlex.split(command)))

    @property
    def env_name(self) -> str:
        return env_name(self.name)


def env_name(name: str) -> str:
    """RUNWARD_MCP_<NAME>_URL: where the agent finds the gateway of MCP server `name`."""
    return f"RUNWARD_MCP_{re.sub(r'[^A-Z0-9]', '_', name.upper())}_URL"


@dataclass(frozen=True)
class Refusal:
    """A tool call the gateway refused (enforce) or would have refused (observe, audit)."""

    server: str
    tool: str
    reason: str
    refused: bool


class RecordingSink:
    """Passes every record on (runward.raw.llm) and keeps the refusals for the run's report."""

    def __init__(self, inner: EventSink) -> None:
        self.inner = inner
        self.refusals: list[Refusal] = []
        self.calls = 0
        self._lock = threading.Lock()

    def emit(self, event: RawLlmEvent) -> None:
        if event.operation == "execute_tool":
            with self._lock:
                self.calls += 1
                # The gateway's own notes lead the output messages: "[runward] refused ...: why".
                note = next((n for n in event.output_messages if n.startswith("[runward]") and "refused" in n), None)
                if note is not None:
                    reason = note.split(": ", 1)[-1]
                    self.refusals.append(Refusal(event.mcp_server or "", event.tool_name or "", reason, event.refused))
        self.inner.emit(event)

    def dead_letter(self, record: DeadLetter) -> None:
        self.inner.dead_letter(record)

    def evidence(self, record: AuditEvidence) -> None:
        self.inner.evidence(record)

    def close(self) -> int:
        return self.inner.close()


@dataclass
class _Running:
    server: McpServer
    uvicorn: uvicorn.Server
    thread: threading.Thread
    url: str


@dataclass
class HostedGateways:
    """`with HostedGateways(servers, deployment, host, sink, bundle) as gw:` the agent's env is
    `gw.env`; on exit the gateways and their servers stop. `bundle` None: observe."""

    servers: Sequence[McpServer]
    deployment: str
    host: str
    sink: EventSink
    bundle: PolicyBundle | None = None
    pod: str | None = None
    running: list[_Running] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.recording = RecordingSink(self.sink)

    @property
    def env(self) -> list[str]:
        return [f"{r.server.env_name}={r.url}" for r in self.running]

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        return [(self.host, r.uvicorn.config.port) for r in self.running]

    @property
    def refusals(self) -> list[Refusal]:
        return list(self.recording.refusals)

    def __enter__(self) -> HostedGateways:
        names = [s.env_name for s in self.servers]
        if len(set(names)) != len(names):
            raise GatewayError(f"two --mcp servers have the same variable: {', '.join(sorted(names))}")
        try:
            for server in self.servers:
                self.running.append(self._start(server))
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self, server: McpServer) -> _Running:
        program = server.command[0]
        if shutil.which(program) is None:
            raise GatewayError(
                f"MCP server {server.name}: {program!r} is not an executable on this host; "
                "give its command with an absolute path (--mcp NAME=/path/to/server ...)"
            )
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, 0))
            sock.listen(64)
        except OSError as exc:
            raise GatewayError(
                f"the tool gateway of MCP server {server.name} cannot listen on {self.host}: {exc}"
            ) from None
        port = int(sock.getsockname()[1])
        app = self._app(server)
        config = uvicorn.Config(
            app, host=self.host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
        running = uvicorn.Server(config)
        thread = threading.Thread(
            target=running.run, kwargs={"sockets": [sock]}, name=f"runward-gateway-{server.name}", daemon=True
        )
        thread.start()
        url = f"http://{self.host}:{port}{PATH}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not running.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                running.should_exit = True
                sock.close()
                raise GatewayError(
                    f"the tool gateway of MCP server {server.name} did not start on {url} "
                    f"within {START_TIMEOUT_S:g}s; see the log above"
                )
            time.sleep(0.02)
        return _Running(server, running, thread, url)

    def _app(self, server: McpServer) -> Starlette:
        upstream = StdioUpstream(server.command, stderr=sys.stderr)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=upstream.app), timeout=httpx.Timeout(30.0, read=None)
        )
        bundles = FixedBundle(self.bundle) if self.bundle is not None else None
        agent = AgentIdentity(self.deployment, self.pod)

        def new_session() -> GatewaySession:
            return GatewaySession(agent, None, server_name=server.name, bundles=bundles)

        # The records go to the shared sink, closed once by `stop`, not by each gateway.
        gateway = HttpGateway("http://runward-mcp-upstream/mcp", new_session, _Unclosed(self.recording), client)

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            yield
            await gateway.aclose()
            await upstream.aclose()

        return Starlette(routes=[Route(PATH, gateway.handle, methods=["POST", "GET", "DELETE"])], lifespan=lifespan)

    def stop(self) -> None:
        running, self.running = self.running, []
        for item in running:
            item.uvicorn.should_exit = True
        for item in running:
            item.thread.join(timeout=10)
        self.recording.close()


class _Unclosed:
    """The shared sink as one gateway sees it: its shutdown does not close it for the others."""

    def __init__(self, inner: EventSink) -> None:
        self.inner = inner

    def emit(self, event: RawLlmEvent) -> None:
        self.inner.emit(event)

    def dead_letter(self, record: DeadLetter) -> None:
        self.inner.dead_letter(record)

    def evidence(self, record: AuditEvidence) -> None:
        self.inner.evidence(record)

    def close(self) -> int:
        return 0
