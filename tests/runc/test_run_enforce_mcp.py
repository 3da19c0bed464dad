"""`runward run --enforce` runs the agent with its whole bundle: seccomp and the egress allowlist
(test_prove_enforce.py) and the tool policy, applied by the MCP tool gateway runward starts in
front of the agent's MCP server, on the host, outside the jail.

Real parts: runc, nftables, the real `mcp-server-time` from PyPI (spawned by the gateway), a real
broker for the gateway's records. The agent runs under /usr/bin/python3 in the jail and speaks
MCP's streamable HTTP with plain urllib (initialize, notifications/initialized, tools/call with
the Mcp-Session-Id header): the mcp SDK lives in the venv's site-packages, which the jail does
not hold, and mounting them would put the server's own code in the jail too.

The APD's tool policy is learnt from what the observed run's gateway recorded (the profiler's
argument learning on the calls it published); its syscalls from a seccomp-log run of the same
agent under runc with the gateway in observe.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn

from edges.gateway.hosted import HostedGateways, McpServer
from edges.gateway.sink import ListSink
from edges.runc.audit import audit_available
from edges.runc.netns import EgressJail, subnet_for
from edges.runc.prove import Workload, run_jailed, runtime_syscalls
from runward.control.api.app import create_app
from runward.control.api.publisher import KafkaPublisher
from runward.control.broker import free_port
from runward.control.cli import main
from runward.core import signing
from runward.core.config import Settings
from runward.core.contracts import (
    ApdRevision,
    EnforcementMode,
    PolicyBundle,
    PolicyProof,
    RawLlmEvent,
    WindowStatus,
    utcnow,
)
from runward.core.store import Store, upgrade
from runward.core.tool_arguments import flatten
from runward.core.topics import RAW_LLM
from services.enforcer.policies import seccomp_profile
from services.profiler.tools import ArgProfile, ToolProfile, _learn, argument_rules
from tests.kafka_reading import read_messages
from tests.runc import enforced

pytestmark = pytest.mark.skipif(
    shutil.which("runc") is None or audit_available() is not None or shutil.which("nft") is None,
    reason=f"needs root, runc, nft and libseccomp ({audit_available() or 'runc or nft missing'})",
)

D = "agents/timekeeper"
VIEWER = "view-3b8e1f0c9a2d7e64"
PYTHON = "/usr/bin/python3"
SERVER = str(Path(sys.executable).parent / "mcp-server-time")  # the PyPI server, in the venv
MCP = f"time={SERVER}"
CALLS = 10  # enough for the profiler to learn `timezone` as enum-like (ENUM_MIN_CALLS 8)

AGENT = """
import importlib.util, json, os, sys, urllib.request

URL = os.environ["RUNWARD_MCP_TIME_URL"]  # the contract: the same code observed and enforced
what = sys.argv[1] if len(sys.argv) > 1 else "normal"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
session, ids = None, iter(range(1, 1000))


def rpc(method, params=None, notify=False):
    global session
    body = {"jsonrpc": "2.0", "method": method, "params": params or {}}
    if not notify:
        body["id"] = next(ids)
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if session:
        headers["Mcp-Session-Id"] = session
    request = urllib.request.Request(URL, data=json.dumps(body).encode(), headers=headers, method="POST")
    with opener.open(request, timeout=30) as response:
        session = response.headers.get("Mcp-Session-Id") or session
        raw = response.read()
    return json.loads(raw) if raw else None


def call(tool, arguments):
    answer = rpc("tools/call", {"name": tool, "arguments": arguments})
    if "error" in answer:
        return None, answer["error"]["message"]
    if answer["result"].get("isError"):
        return None, answer["result"]["content"][0]["text"]
    return json.loads(answer["result"]["content"][0]["text"]), None


hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "timekeeper", "version": "1"}}
print("SERVER", rpc("initialize", hello)["result"]["serverInfo"]["name"])
rpc("notifications/initialized", notify=True)
for _ in range(int(os.environ.get("CALLS", "1"))):
    result, problem = call("get_current_time", {"timezone": "Europe/Paris"})
    if problem:
        print(f"FAILED normal: {problem}")
        sys.exit(1)
print("TIME", result["timezone"], flush=True)
problem = None
if what == "refused":  # a tool the APD never saw
    paris_noon = {"source_timezone": "Europe/Paris", "time": "12:00", "target_timezone": "Asia/Tokyo"}
    result, problem = call("convert_time", paris_noon)
elif what == "argument":  # a known tool, an argument value outside what was learnt
    result, problem = call("get_current_time", {"timezone": "America/New_York"})
elif what == "direct":  # around the gateway: start the server itself
    server = sys.argv[2]
    module = importlib.util.find_spec("mcp_server_time")
    try:
        os.execv(server, [server])
    except OSError as exc:
        problem = f"{exc} (server present: {os.path.exists(server)}, module importable: {module is not None})"
if problem:
    print(f"BLOCKED {what}: {problem}", flush=True)
    sys.exit(3)
print(f"DONE {what}")
"""


@contextmanager
def observing_gateway(jail: EgressJail) -> Iterator[list[str]]:
    """The gateway as `runward run --enforce` starts it, in observe (no bundle), for the log run."""
    with HostedGateways([McpServer.parse(MCP)], D, jail.host_ip, ListSink()) as gateways:
        for _, port in gateways.endpoints:
            jail.allow_service(port)
        yield gateways.env


def learnt_tools(events: list[RawLlmEvent]) -> tuple[list[str], dict[str, dict[str, object]]]:
    """The tool behaviours and argument rules the profiler learns from the gateway's records."""
    profile = ToolProfile()
    tools: set[str] = set()
    for event in events:
        tool = f"{event.mcp_server}/{event.tool_name}"
        tools.add(f"tool:{tool}")
        for name, value in flatten(event.tool_arguments or {}):
            _learn(profile.arguments.setdefault(tool, {}).setdefault(name, ArgProfile()), value)
    return sorted(tools), dict(argument_rules(profile))


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[tuple[Path, ApdRevision]]:
    home = tmp_path_factory.mktemp("runc-mcp-home")
    agent_dir = home / "agent"
    agent_dir.mkdir()
    (agent_dir / "agent.py").write_text(AGENT)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RUNWARD_HOME", str(home))
        env.setenv("RUNWARD_KAFKA", kafka_bootstrap)
        env.setenv("CALLS", str(CALLS))
        env.chdir(agent_dir)
        # Observe: plain `runward run`, the gateway on 127.0.0.1 records every call.
        code = main(["run", "--deployment", D, "--service-account", "tk-sa", "--mcp", MCP, "--", PYTHON, "agent.py"])
        assert code == 0
        calls = read_messages(
            kafka_bootstrap,
            RAW_LLM.name,
            CALLS,
            lambda m: m.key == D and isinstance(m.record, RawLlmEvent) and m.record.operation == "execute_tool",
            timeout=30,
        )
        events = [m.record for m in calls]
        assert len(events) == CALLS and {e.tool_name for e in events} == {"get_current_time"}
        assert all(e.mcp_server == "time" and not e.refused for e in events)
        tools, rules = learnt_tools(events)
        # The syscalls: the same agent under runc, everything logged, the gateway in observe.
        everything = {"defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": []}
        workload = Workload(command=[PYTHON, "agent.py"], binaries=[PYTHON], cwd=str(agent_dir), env=["CALLS=1"])
        seen = run_jailed(workload, everything, [], subnet_for(D), services=observing_gateway)
        assert seen.exit_code == 0 and "TIME Europe/Paris" in seen.stdout, seen.stderr
        assert seen.refused_destinations == [] and len(seen.services) == 1
        own = sorted(n for n, comms in seen.refused_by.items() if any(not c.startswith("runc:") for c in comms))
        now = utcnow()
        apd = ApdRevision(
            deployment=D,
            revision=1,
            created_at=now,
            autonomy="low",
            window_started_at=now - timedelta(days=3),
            window_ends_at=now - timedelta(minutes=1),
            window_status=WindowStatus.COMPLETE,
            behaviours={"syscalls": [f"syscall:{n}" for n in own], "exec": [f"exec:{PYTHON}"], "mcp_tools": tools},
            tool_arguments=rules,
        )
        yield home, apd


def enforce_bundle(apd: ApdRevision, runtime: list[str]) -> PolicyBundle:
    """The enforcer's own bundle after audit, a proof of its profile, and enforce."""
    digest = signing.profile_sha256(seccomp_profile(apd, EnforcementMode.ENFORCE, runtime))
    proof = PolicyProof(
        deployment=D,
        apd_revision=apd.revision,
        profile_sha256=digest,
        passed=True,
        ran_at=utcnow(),
        runtime="runc",
        runtime_syscalls=runtime,
    )
    return enforced.enforce_bundle(apd, proof)


def test_run_enforce_puts_the_tool_gateway_in_front_of_the_agents_mcp_server(
    observed: tuple[Path, ApdRevision], capfd: pytest.CaptureFixture[str]
) -> None:
    home, apd = observed
    capfd.readouterr()
    bundle = enforce_bundle(apd, runtime_syscalls(home))
    # The tool policy is what observation saw: one tool, its one timezone learnt as the only value.
    assert bundle.tool_policy is not None
    (rule,) = bundle.tool_policy.tools
    assert rule.tool == "time/get_current_time" and rule.arguments["timezone"].values == ["Europe/Paris"]
    assert bundle.egress_allowlist == []  # the gateway is runward's own service, not a learnt destination
    bundle_file = home / "bundle.json"
    bundle_file.write_text(bundle.model_dump_json())
    base = ["run", "--deployment", D, "--service-account", "tk-sa", "--enforce", "--bundle-file", str(bundle_file)]
    base += ["--mcp", MCP, "--"]

    assert main([*base, PYTHON, "agent.py"]) == 0
    out, err = capfd.readouterr()
    assert "SERVER mcp-time" in out and "TIME Europe/Paris" in out and "DONE normal" in out, (out, err)
    assert "RUNWARD_MCP_TIME_URL" in err and "runward's own service" in err
    assert "refused" not in err, err

    assert main([*base, PYTHON, "agent.py", "refused"]) == 3
    out, err = capfd.readouterr()
    assert "TIME Europe/Paris" in out and "BLOCKED refused: Refused by the Runward tool gateway" in out, (out, err)
    assert "runward run --enforce: tool refused: time/convert_time (tool time/convert_time is not in" in err, err

    assert main([*base, PYTHON, "agent.py", "argument"]) == 3
    out, err = capfd.readouterr()
    assert "TIME Europe/Paris" in out and "BLOCKED argument" in out, (out, err)
    with capfd.disabled():
        print(err)  # what `runward run --enforce` says, for the record
    assert "tool refused: time/get_current_time (arguments of time/get_current_time outside" in err, err
    assert "timezone: not one of the 1 learnt values" in err and "America/New_York" not in err

    # Around the gateway: the server is not in the jail's rootfs, neither its script nor its module.
    assert main([*base, PYTHON, "agent.py", "direct", SERVER]) == 3
    out, err = capfd.readouterr()
    assert "BLOCKED direct: [Errno 2] No such file or directory" in out, (out, err)
    assert "server present: False, module importable: False" in out
    assert "seccomp refused" not in err, err  # refused by absence, not by a rule


def test_run_fails_closed_when_the_gateway_cannot_start(
    observed: tuple[Path, ApdRevision], capfd: pytest.CaptureFixture[str]
) -> None:
    home, apd = observed
    capfd.readouterr()
    bundle_file = home / "bundle-closed.json"
    bundle_file.write_text(enforce_bundle(apd, runtime_syscalls(home)).model_dump_json())
    missing = "time=/nonexistent/mcp-server-time"
    enforced = ["--enforce", "--bundle-file", str(bundle_file)]
    for extra in (enforced, []):
        code = main(["run", "--deployment", D, "--service-account", "tk-sa", *extra, "--mcp", missing, "--", PYTHON])
        out, err = capfd.readouterr()
        assert code == 1 and "/nonexistent/mcp-server-time" in err and "absolute path" in err, (code, err)
        assert "the workload was not started" in err
    # A run that did not start is not the recorded workload `runward prove` replays.
    recorded = json.loads((home / "workloads" / "agents" / "timekeeper.json").read_text())
    assert recorded["command"] == [PYTHON, "agent.py"] and recorded["mcp"] == [MCP]
    assert main(["run", "--deployment", D, "--service-account", "tk-sa", "--mcp", "no-command", "--", PYTHON]) == 2
    assert "NAME=COMMAND" in capfd.readouterr().err
    assert os.environ.get("RUNWARD_MCP_TIME_URL") is None


@pytest.fixture
def api_url(observed: tuple[Path, ApdRevision], kafka_bootstrap: str, tmp_path: Path) -> Iterator[str]:
    """The Runward API holding the agent's APD (what `runward prove` proves)."""
    _, apd = observed
    db = f"sqlite:///{tmp_path}/runward.db"
    upgrade(db)
    store = Store(db)
    store.touch_agent(D, "tk-sa", utcnow())
    store.put_artifact(D, "apd", apd.revision, apd.created_at, apd.model_dump(mode="json"))
    settings = Settings(api_tokens=f"vic:{VIEWER}:viewer", kafka=kafka_bootstrap)
    app = create_app(settings, store=store, publisher=KafkaPublisher(kafka_bootstrap, timeout_s=15))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_prove_replays_the_recorded_workload_with_its_mcp_servers(
    observed: tuple[Path, ApdRevision], api_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    home, _ = observed
    recorded = json.loads((home / "workloads" / "agents" / "timekeeper.json").read_text())
    assert recorded["command"] == [PYTHON, "agent.py"] and recorded["mcp"] == [MCP]
    capfd.readouterr()
    # The recorded workload reaches its server through the gateway (observe) in both proof runs.
    assert main(["prove", D, "--api", api_url, "--token", VIEWER, "--no-submit"]) == 0
    out, err = capfd.readouterr()
    assert "PASS" in out, (out, err)
    assert err.count("runward prove: MCP server time behind the tool gateway") == 2, err
