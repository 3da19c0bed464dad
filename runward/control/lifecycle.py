"""Observe → audit → enforce on one machine, with a small live agent: the path issue 12 promises,
driven the way an operator would, through the CLI (`runward run`, `runward prove`, `runward run
--enforce`, `runward evidence`) and the API (promotion, waivers, readiness) of a running stack.

Why a module of its own: the e2e test (tests/e2e/test_observe_audit_enforce.py) and `runward
demo`'s "local enforcement" section run the same agent through the same steps; the test asserts
on what each step returns, the demo prints it.

The agent does an agent's normal work (writes a note, asks its model provider over HTTP, a
server on this host) and, when told, one attack action: a new syscall family (unshare, listen),
a new binary (exec /usr/bin/id) or a new destination (another port on the host).
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from runward.control.supervisor import Supervisor

PYTHON = "/usr/bin/python3"
ATTACKS = ("unshare", "listen", "exec", "newdest")
BLOCKED_EXIT = 3

AGENT = """
import ctypes, socket, subprocess, sys, time

HOST, PORT, OTHER = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
what = sys.argv[4] if len(sys.argv) > 4 else "normal"
with open("/tmp/notes.txt", "w") as notes:
    notes.write("plan")
time.sleep(0.1)  # thinking
with socket.create_connection((HOST, PORT), timeout=5) as s:
    s.sendall(b"GET /v1/models HTTP/1.0\\r\\n\\r\\n")
    print(s.recv(64).split(b"\\r\\n")[0].decode())
try:
    if what == "unshare":  # a new syscall family: namespaces
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x04000000) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
    elif what == "listen":  # a new syscall family: a listening socket
        server = socket.socket()
        server.bind(("0.0.0.0", 0))
        server.listen()
    elif what == "exec":  # a new binary
        subprocess.run(["/usr/bin/id"], check=True)
    elif what == "newdest":  # a new destination
        socket.create_connection((HOST, OTHER), timeout=3).close()
except OSError as exc:
    print(f"BLOCKED {what}: {exc}", flush=True)
    sys.exit(3)
print(f"DONE {what}", flush=True)
if what != "normal":
    # The kernel log collector attributes a seccomp record by the live process's cgroup: an
    # attacker that lingers (most do) is attributed; one gone within ~0.5 s is counted, not named.
    time.sleep(1.5)
"""


def local_enforcement_missing() -> str | None:
    """What this machine lacks for local enforcement (root, runc, nft, libseccomp), or None."""
    from edges.runc.audit import audit_available

    if os.geteuid() != 0:
        return "it needs root (runc, nftables and the kernel log need it): run `sudo make run`"
    missing = [tool for tool in ("runc", "nft") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed: apt-get install {' '.join(missing)}"
    if not Path(PYTHON).exists():
        return f"{PYTHON} is missing: apt-get install python3"
    return audit_available()


class _Provider(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server hook
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def host_address() -> str:
    """The host's own IPv4 address: reachable from the host and, through the veth, from the jail."""
    out = subprocess.run(["ip", "-4", "route", "get", "192.0.2.250"], capture_output=True, text=True).stdout
    words = out.split()
    return words[words.index("src") + 1] if "src" in words else "127.0.0.1"


class LocalAgent:
    """The agent's program in its directory, and two HTTP servers on this host: its model provider
    (where it goes) and another one (a destination it never reached while observed)."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "agent"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "agent.py").write_text(AGENT)
        self.host = host_address()
        self.servers = [ThreadingHTTPServer(("0.0.0.0", 0), _Provider) for _ in range(2)]
        for server in self.servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self.port, self.other = (s.server_address[1] for s in self.servers)

    def argv(self, what: str = "normal") -> list[str]:
        return [PYTHON, "agent.py", self.host, str(self.port), str(self.other), what]

    @property
    def destination(self) -> str:
        return f"{self.host}:{self.port}/tcp"

    @property
    def new_destination(self) -> str:
        return f"{self.host}:{self.other}/tcp"

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


@contextlib.contextmanager
def _descriptors_to(fd: int) -> Iterator[None]:
    """Standard output and error of this process and its children into `fd` for a while."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for copy in saved:
            os.close(copy)


@dataclass
class Step:
    """One CLI command as the operator typed it, its exit code and what it printed."""

    command: str
    code: int
    out: str
    err: str


class Lifecycle:
    """One agent through observe → audit → enforce against a running stack's API."""

    def __init__(
        self,
        agent: LocalAgent,
        deployment: str,
        service_account: str,
        api: str,
        approver: str,
        viewer: str,
        quiet: bool = False,
    ) -> None:
        self.agent, self.deployment, self.service_account = agent, deployment, service_account
        self.quiet = quiet  # the agent's own output under `runward run` is kept out of the terminal
        self.api, self.approver, self.viewer = api.rstrip("/"), approver, viewer
        namespace, _, name = deployment.partition("/")
        self.path = f"/v1/agents/{namespace}/{name}"

    # --- the CLI, as typed ----------------------------------------------------------------------
    def cli(self, *args: str) -> Step:
        """`runward ARGS` in the agent's directory; its exit code and printed output (the agent's
        own output under `runward run` goes to this process's descriptors, not into the Step)."""
        from runward.control.cli import main

        out, err = io.StringIO(), io.StringIO()
        here = Path.cwd()
        os.chdir(self.agent.dir)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        finally:
            os.chdir(here)
        return Step("runward " + " ".join(args), code, out.getvalue(), err.getvalue())

    def observe(self) -> Step:
        """`runward run`: the agent in its own cgroup, seen by the eBPF sensor, its command recorded."""
        args = ("run", "--deployment", self.deployment, "--service-account", self.service_account)
        if not self.quiet:
            return self.cli(*args, "--", *self.agent.argv())
        with tempfile.TemporaryFile() as sink, _descriptors_to(sink.fileno()):
            return self.cli(*args, "--", *self.agent.argv())

    def prove(self) -> Step:
        return self.cli("prove", self.deployment, "--api", self.api, "--token", self.approver)

    def run_enforced(self, what: str = "normal") -> Step:
        """`runward run --enforce`: under runc with the agent's latest bundle (audit or enforce)."""
        return self.cli(
            "run",
            "--deployment",
            self.deployment,
            "--service-account",
            self.service_account,
            "--enforce",
            "--timeout",
            "60",
            "--api",
            self.api,
            "--token",
            self.viewer,
            "--",
            *self.agent.argv(what),
        )

    def evidence(self) -> Step:
        return self.cli("evidence", self.deployment, "--api", self.api, "--token", self.viewer)

    # --- the API ----------------------------------------------------------------------------------
    def get(self, suffix: str, **params: Any) -> httpx.Response:
        return httpx.get(
            f"{self.api}{self.path}{suffix}",
            params=params,
            headers={"Authorization": f"Bearer {self.viewer}"},
            timeout=30,
        )

    def post(self, suffix: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{self.api}{self.path}{suffix}",
            json=body,
            headers={"Authorization": f"Bearer {self.approver}"},
            timeout=30,
        )

    def promote(self, mode: str, reason: str) -> httpx.Response:
        return self.post("/promotion", {"mode": mode, "reason": reason})

    def waive(self, check: str, reason: str, days: int = 7) -> httpx.Response:
        """A waiver lapses: `days` from now."""
        from datetime import UTC, datetime, timedelta

        until = (datetime.now(UTC) + timedelta(days=days)).isoformat()
        return self.post("/waivers", {"check": check, "reason": reason, "until": until})

    def readiness(self, target: str = "enforce") -> dict[str, Any]:
        body: dict[str, Any] = self.get("/readiness", target=target).json()
        return body

    def failing(self, target: str = "enforce") -> dict[str, str]:
        """The failing readiness checks: id -> evidence."""
        return {c["id"]: c["evidence"] for c in self.readiness(target)["checks"] if c["status"] == "fail"}

    def latest(self, suffix: str) -> dict[str, Any] | None:
        response = self.get(suffix)
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body

    def audit_evidence(self) -> list[dict[str, Any]]:
        body = self.latest("/audit-evidence")
        return list(body["evidence"]) if body else []

    def wait(self, what: str, found: Callable[[], Any], timeout: float = 60, interval: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = found()
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError(f"{what} within {timeout:.0f} s")

    def bundle(self, match: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60) -> dict[str, Any]:
        def latest() -> dict[str, Any] | None:
            found = self.latest("/policies")
            return found if found is not None and match(found) else None

        found: dict[str, Any] = self.wait(what, latest, timeout)
        return found


@contextlib.contextmanager
def local_agent(home: Path) -> Iterator[LocalAgent]:
    agent = LocalAgent(home)
    try:
        yield agent
    finally:
        agent.close()


class QuietSupervisor(Supervisor):
    """`runward up`'s supervisor without its line per service (the demo's second stack)."""

    def _print(self, text: str) -> None:
        pass


@dataclass
class LocalStack:
    supervisor: Supervisor
    api: str
    approver: str
    viewer: str


@contextlib.contextmanager
def local_stack(home: Path, window_s: int, soak_s: int, quiet: bool = False) -> Iterator[LocalStack]:
    """A whole Runward on this machine (embedded broker, every stage, the API, the kernel log
    collector, the eBPF sensor) with a short observation window and audit soak, under `home`."""
    from runward.control.broker import free_port
    from runward.core.config import Settings

    approver, viewer = f"approve-{secrets.token_hex(12)}", f"view-{secrets.token_hex(12)}"
    config = Settings(
        kafka=f"127.0.0.1:{free_port()}",
        db=None,
        home=home,
        api_host="127.0.0.1",
        api_port=free_port(),
        otlp_port=free_port(),
        api_tokens=f"ada:{approver}:approver,vic:{viewer}:viewer",
        tokens_file=None,
        promotion_key=None,
        promotion_key_file=None,
        observation_window_s=window_s,
        audit_soak_s=soak_s,
    )
    sup = (QuietSupervisor if quiet else Supervisor)(config, external_kafka=False)
    before = os.environ.get("RUNWARD_HOME")
    os.environ["RUNWARD_HOME"] = str(home.resolve())  # where `runward run` registers and records
    try:
        sup.start(with_sensor=True)
        yield LocalStack(sup, f"http://127.0.0.1:{config.api_port}", approver, viewer)
    finally:
        sup.stop()
        if before is None:
            os.environ.pop("RUNWARD_HOME", None)
        else:
            os.environ["RUNWARD_HOME"] = before
