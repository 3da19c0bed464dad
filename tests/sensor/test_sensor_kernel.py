"""The sensor on the real kernel and a real broker.

One sensor process (`python -m sensor.cli sensor`, Kubernetes resolver on, pointed at a
fake API server replaying recorded objects) observes workloads started with
`python -m sensor.cli run`. Everything the tests assert is read back from
runward.raw.sensor.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sensor_fake_apiserver import FakeApiServer, load_pods
from sensor_topic_reader import Received, TopicReader

from runward.control.broker import free_port
from sensor.attribution.cgroupfs import cgroup2_root
from sensor.cli import sensor_unavailable_reason
from sensor.workloads import _join_cgroup, _remove_cgroup

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
RUN_ID = secrets.token_hex(2)
NAMESPACE = "sensor-e2e"
DEPLOYMENT = f"{NAMESPACE}/researcher-{RUN_ID}"
SERVICE_ACCOUNT = "researcher-sa"
DNS_NAME = "tools.agents.internal"
TRUE = shutil.which("true") or "/bin/true"
EXOTIC = {"kexec_load", "reboot", "init_module", "swapon", "pivot_root", "acct"}


def _skip_reason() -> str | None:
    reason = sensor_unavailable_reason()
    if reason:
        return reason
    return None


_reason = _skip_reason()
if _reason:
    pytest.skip(f"kernel tests need the sensor to run here: {_reason}", allow_module_level=True)

WORKLOAD = r"""
import os, socket, struct, subprocess, sys
marker, tcp_port, dns_ip, name, true_bin, port_file, tcp6_port = sys.argv[1:8]
for _ in range(50):                       # the same open 50 times: one event after dedup
    with open(marker) as f:
        f.read()
subprocess.run([true_bin, "runward-marker", "--token", "kernel-argv-secret-0451"], check=True)
question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(5)
udp.sendto(struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 1, 1), (dns_ip, 53))
answer, _ = udp.recvfrom(512)
address = socket.inet_ntoa(answer[-4:])
out = socket.socket()
out.settimeout(5)
out.connect((address, int(tcp_port)))
out.sendall(b"hello")
out.close()
if tcp6_port != "-":
    out6 = socket.socket(socket.AF_INET6)
    out6.settimeout(5)
    out6.connect(("::1", int(tcp6_port)))
    out6.close()
if port_file != "-":
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(10)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    conn, _ = srv.accept()
    conn.recv(16)
    conn.close()
"""


# ---------------------------------------------------------------- local servers


class DnsResponder:
    """Answers every A question with 127.0.0.1 on <some 127.0.0.x>:53 (no external network)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for last in range(1, 20):
            try:
                self.sock.bind((f"127.0.0.{last}", 53))
                break
            except OSError:
                continue
        else:
            raise RuntimeError("no free 127.0.0.x:53 for the test DNS responder")
        self.ip = self.sock.getsockname()[0]
        self.sock.settimeout(0.2)
        self.questions = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            self.questions += 1
            end = query.index(b"\0", 12) + 5
            qtype = struct.unpack(">H", query[end - 4 : end - 2])[0]
            answers = 1 if qtype == 1 else 0  # an A record for A, NODATA for anything else
            header = struct.pack(">HHHHHH", struct.unpack(">H", query[:2])[0], 0x8180, 1, answers, 0, 0)
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 30, 4) + socket.inet_aton("127.0.0.1")
            self.sock.sendto(header + query[12:end] + (answer if answers else b""), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class TcpServer:
    def __init__(self, family: socket.AddressFamily = socket.AF_INET) -> None:
        self.sock = socket.socket(family)
        self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


# ---------------------------------------------------------------- the sensor


@dataclass
class SensorRun:
    process: subprocess.Popen[bytes]
    metrics_url: str
    home: Path
    log: Path

    def metrics(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.metrics_url, timeout=2) as response:
            return dict(json.loads(response.read()))


PODS = {p["metadata"]["name"]: p for p in load_pods()["items"]}
K8S_POD = PODS["researcher-6f7b9c8d4-k2x9z"]
K8S_UID = K8S_POD["metadata"]["uid"]
K8S_CID = K8S_POD["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]


@pytest.fixture(scope="module")
def kubepods() -> Iterator[Path]:
    """A kubelet-shaped container cgroup (systemd driver, containerd) for the recorded pod."""
    root = cgroup2_root()
    assert root is not None
    top = root / "kubepods.slice"
    if top.exists():
        pytest.skip("this machine already has a kubepods cgroup; not touching a real node's tree")
    container = (
        top
        / "kubepods-burstable.slice"
        / f"kubepods-burstable-pod{K8S_UID.replace('-', '_')}.slice"
        / f"cri-containerd-{K8S_CID}.scope"
    )
    container.mkdir(parents=True)
    try:
        yield container
    finally:
        path = container
        while path != root:
            if path.exists():
                _remove_cgroup(path)
            path = path.parent


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsResponder]:
    responder = DnsResponder()
    yield responder
    responder.close()


@pytest.fixture(scope="module")
def tcp() -> Iterator[TcpServer]:
    server = TcpServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def tcp6() -> Iterator[TcpServer]:
    try:
        server = TcpServer(socket.AF_INET6)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    yield server
    server.close()


@pytest.fixture(scope="module")
def reader(kafka_bootstrap: str) -> Iterator[TopicReader]:
    topic_reader = TopicReader(kafka_bootstrap).start()
    yield topic_reader
    topic_reader.close()


@pytest.fixture(scope="module")
def sensor(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, kubepods: Path, reader: TopicReader
) -> Iterator[SensorRun]:
    home = tmp_path_factory.mktemp("sensor-home")
    log = home / "sensor.log"
    port = free_port()
    with FakeApiServer().running() as api:
        env = {
            **os.environ,
            "RUNWARD_HOME": str(home),
            "PYTHONPATH": str(REPO),
            "NODE_NAME": "node-a",
            "KUBECONFIG": str(api.kubeconfig(home / "kubeconfig")),
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sensor.cli",
                    "sensor",
                    "--kafka",
                    kafka_bootstrap,
                    "--kubernetes",
                    "--metrics-port",
                    str(port),
                ],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        run = SensorRun(process, f"http://127.0.0.1:{port}/metrics.json", home, log)
        deadline = time.monotonic() + 90  # includes building the BPF object on a fresh clone
        while True:
            if process.poll() is not None:
                pytest.fail(f"sensor exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                values = run.metrics()
                if values.get("runward_sensor_ready", {}).get("") == 1:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"sensor not ready in 90 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        try:
            yield run
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def runward_run(home: Path, deployment: str, sa: str, cmd: list[str], replicas: int = 1) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RUNWARD_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sensor.cli",
            "run",
            "--deployment",
            deployment,
            "--service-account",
            sa,
            "--replicas",
            str(replicas),
            "--",
            *cmd,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


# ---------------------------------------------------------------- the main scenario


@dataclass
class Scenario:
    events: list[Received]
    outside_pid: int
    outside_marker: Path
    marker: Path
    tcp_port: int
    tcp6_port: int
    accept_port: int
    workload_stderr: str


@pytest.fixture(scope="module")
def scenario(
    sensor: SensorRun,
    reader: TopicReader,
    tmp_path_factory: pytest.TempPathFactory,
    dns: DnsResponder,
    tcp: TcpServer,
    tcp6: TcpServer,
) -> Iterator[Scenario]:
    work = tmp_path_factory.mktemp("workload")
    script = work / "workload.py"
    script.write_text(WORKLOAD)
    marker = work / "marker-inside.txt"
    marker.write_text("inside")
    outside_marker = work / "marker-outside.txt"
    outside_marker.write_text("outside")
    port_file = work / "accept.port"
    accepted, questions = tcp.accepted, dns.questions
    # The same actions from a process that is not a workload: none of it may show up.
    outside = subprocess.Popen(
        [sys.executable, str(script), str(outside_marker), str(tcp.port), dns.ip, DNS_NAME, TRUE, "-", str(tcp6.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, outside_err = outside.communicate(timeout=30)
    assert outside.returncode == 0, outside_err.decode()
    proc = runward_run(
        sensor.home,
        DEPLOYMENT,
        SERVICE_ACCOUNT,
        [
            sys.executable,
            str(script),
            str(marker),
            str(tcp.port),
            dns.ip,
            DNS_NAME,
            TRUE,
            str(port_file),
            str(tcp6.port),
        ],
    )
    deadline = time.monotonic() + 20
    while not port_file.exists():
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline, "the workload never listened"
        time.sleep(0.02)
    accept_port = int(port_file.read_text())
    with socket.create_connection(("127.0.0.1", accept_port), timeout=5) as inbound:
        inbound.sendall(b"hi")
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()
    assert (tcp.accepted - accepted, dns.questions - questions) == (2, 2)

    def mine(r: Received) -> bool:
        return r.event.attribution.deployment == DEPLOYMENT

    def complete(found: list[Received]) -> bool:
        kinds = {r.event.detail.kind for r in found}
        syscalls = [r for r in found if r.event.detail.kind == "syscalls"]
        has_accept = any("accept4" in r.event.detail.syscalls for r in syscalls)  # type: ignore[union-attr]
        return {"exec", "exit", "file_open", "connect", "accept", "dns"} <= kinds and has_accept

    events = reader.wait_for(mine, complete, timeout=20)
    time.sleep(1.5)  # anything that should not be there gets a chance to arrive
    events = reader.records(mine)
    yield Scenario(events, outside.pid, outside_marker, marker, tcp.port, tcp6.port, accept_port, stderr.decode())


def details(s: Scenario, kind: str) -> list[Any]:
    return [r.event.detail for r in s.events if r.event.detail.kind == kind]


def test_every_event_is_attributed_to_the_deployment_and_service_account(sensor: SensorRun, scenario: Scenario) -> None:
    assert scenario.events
    pods = {r.event.attribution.pod for r in scenario.events}
    cgroups = {r.event.attribution.cgroup_id for r in scenario.events}
    assert len(pods) == 1 and len(cgroups) == 1
    pod = pods.pop()
    assert pod is not None and pod.startswith(f"researcher-{RUN_ID}-")
    registry = json.loads((sensor.home / "workloads.json").read_text())["workloads"]
    (entry,) = [w for w in registry if w["deployment"] == DEPLOYMENT]
    assert cgroups == {entry["cgroup_id"]}
    for r in scenario.events:
        a = r.event.attribution
        assert r.key == DEPLOYMENT
        assert (a.namespace, a.deployment, a.service_account, a.pod_uid) == (
            NAMESPACE,
            DEPLOYMENT,
            SERVICE_ACCOUNT,
            entry["pod_uid"],
        )
        assert a.node == "node-a"
        assert r.event.kernel_losses == 0


def test_exec_and_exit(scenario: Scenario) -> None:
    execs = details(scenario, "exec")
    assert sorted(e.binary for e in execs) == sorted([sys.executable, TRUE])
    (true_exec,) = [e for e in execs if e.binary == TRUE]
    (python_exec,) = [e for e in execs if e.binary == sys.executable]
    # The secret in its argv never reached the topic: the sensor redacts before publishing.
    assert true_exec.argv == [TRUE, "runward-marker", "--token", "[REDACTED]"]
    assert not any("kernel-argv-secret-0451" in r.event.model_dump_json() for r in scenario.events)
    assert python_exec.argv[1:3] == [str(scenario.marker.parent / "workload.py"), str(scenario.marker)]
    assert python_exec.parent_comm == "python3" or python_exec.parent_comm.startswith("python")
    python_pid = next(r.event.pid for r in scenario.events if r.event.detail is python_exec)
    assert true_exec.ppid == python_pid
    exits = details(scenario, "exit")
    assert len(exits) == 2 and all(e.exit_code == 0 for e in exits)


def test_file_open_is_seen_once_per_dedup_window(sensor: SensorRun, scenario: Scenario) -> None:
    opens = [d for d in details(scenario, "file_open") if d.path == str(scenario.marker)]
    assert len(opens) == 1, "50 identical opens inside the window fold into one event"
    assert opens[0].flags & os.O_ACCMODE == os.O_RDONLY
    folded = sensor.metrics()["runward_sensor_dedup_folded_total"]
    assert folded["kind=file_open,stage=kernel"] + folded.get("kind=file_open,stage=sensor", 0) >= 49
    paths = {d.path for d in details(scenario, "file_open")}
    assert str(scenario.marker.parent / "accept.port.tmp") in paths  # write opens are seen too
    assert all(p.startswith("/") for p in paths)


def test_dns_query_and_named_connect(scenario: Scenario) -> None:
    dns = details(scenario, "dns")
    assert [(d.name, d.qtype) for d in dns] == [(DNS_NAME, "A")]
    connects = details(scenario, "connect")
    assert sorted((c.family, c.address, c.port, c.protocol, c.dns_name or "") for c in connects) == [
        ("ipv4", "127.0.0.1", scenario.tcp_port, "tcp", DNS_NAME),
        ("ipv6", "::1", scenario.tcp6_port, "tcp", ""),
    ]


def test_accepted_connection(scenario: Scenario) -> None:
    accepts = details(scenario, "accept")
    assert [(a.family, a.address, a.port, a.protocol) for a in accepts] == [
        ("ipv4", "127.0.0.1", scenario.accept_port, "tcp"),
    ]


def test_syscall_set_has_what_the_workload_did_and_nothing_exotic(scenario: Scenario) -> None:
    sets = [set(d.syscalls) for d in details(scenario, "syscalls")]
    assert sets
    for before, after in zip(sets, sets[1:], strict=False):
        assert before < after, "a syscall event is only sent when the set grew"
    final = sets[-1]
    assert {
        "openat",
        "read",
        "execve",
        "socket",
        "sendto",
        "recvfrom",
        "connect",
        "accept4",
        "bind",
        "listen",
        "rename",
        "exit_group",
    } <= final
    assert not final & EXOTIC


def test_a_process_outside_any_workload_produces_nothing(reader: TopicReader, scenario: Scenario) -> None:
    everything = reader.records()
    assert not [
        r
        for r in everything
        if r.event.detail.kind == "file_open" and r.event.detail.path == str(scenario.outside_marker)
    ]  # type: ignore[union-attr]
    assert not [r for r in everything if r.event.pid == scenario.outside_pid]
    ours = [r for r in everything if r.event.attribution.node == "node-a"]
    assert ours and not [r for r in ours if r.key.startswith("node-a:")], "unattributed events were published"


def test_actions_reach_the_topic_within_a_second(scenario: Scenario) -> None:
    actions = [r for r in scenario.events if r.event.detail.kind != "syscalls"]
    delays = sorted(r.arrived - r.event.ts.timestamp() for r in actions)
    print(
        f"latency over {len(delays)} events: median {delays[len(delays) // 2] * 1000:.0f} ms, "
        f"max {delays[-1] * 1000:.0f} ms"
    )
    assert delays[0] > -0.05, "event timestamps are in the future: wall-clock conversion is wrong"
    assert delays[-1] < 1.0


def test_replicas_get_their_own_pods_and_cgroups(sensor: SensorRun, reader: TopicReader) -> None:
    deployment = f"{NAMESPACE}/scaled-{RUN_ID}"
    proc = runward_run(sensor.home, deployment, "scaled", [TRUE], replicas=2)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()
    found = reader.wait_for(
        lambda r: r.event.attribution.deployment == deployment and r.event.detail.kind == "exec",
        lambda f: len(f) >= 2,
        timeout=10,
    )
    assert len(found) == 2
    assert len({r.event.attribution.pod for r in found}) == 2
    assert len({r.event.attribution.cgroup_id for r in found}) == 2
    assert {r.event.attribution.service_account for r in found} == {"scaled"}


def test_kubernetes_pod_is_attributed_through_the_api(sensor: SensorRun, reader: TopicReader, kubepods: Path) -> None:
    marker = sensor.home / "k8s-marker"
    marker.write_text("k8s")
    proc = subprocess.Popen(
        ["/bin/cat", str(marker)],
        preexec_fn=_join_cgroup(str(kubepods / "cgroup.procs")),
        stdout=subprocess.DEVNULL,
    )
    assert proc.wait(10) == 0
    found = reader.wait_for(
        lambda r: r.event.detail.kind == "file_open" and r.event.detail.path == str(marker),  # type: ignore[union-attr]
        lambda f: len(f) >= 1,
        timeout=10,
    )
    assert len(found) == 1
    a = found[0].event.attribution
    assert found[0].key == "agents/researcher"
    assert (a.namespace, a.pod, a.pod_uid, a.container_id, a.deployment, a.service_account) == (
        "agents",
        "researcher-6f7b9c8d4-k2x9z",
        K8S_UID,
        K8S_CID,
        "agents/researcher",
        "researcher",
    )
    assert a.cgroup_id == os.stat(kubepods).st_ino


def test_counters_show_no_drops(sensor: SensorRun, scenario: Scenario) -> None:
    values = sensor.metrics()
    assert values.get("runward_sensor_perf_lost_samples_total", {}).get("", 0) == 0
    assert values["runward_sensor_kernel_output_failed_total"][""] == 0
    assert values["runward_sensor_kernel_emitted_total"][""] > 0
    assert values["runward_sensor_events_total"]["kind=exec"] >= 2
    assert values.get("runward_sensor_producer_delivery_failed_total", {}).get("", 0) == 0


def test_glibc_resolver_is_seen_through_its_real_system_calls(
    sensor: SensorRun, reader: TopicReader, dns: DnsResponder, tcp: TcpServer, tmp_path: Path
) -> None:
    """getaddrinfo() as agents call it: glibc reads resolv.conf, connects a UDP socket and
    sends A and AAAA together (sendmmsg). resolv.conf is bind-mounted in a private mount
    namespace so the machine's own resolver setting is untouched."""
    if not shutil.which("unshare"):
        pytest.skip("util-linux unshare is not installed")
    name = f"model-{RUN_ID}.agents.internal"
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {dns.ip}\noptions attempts:1 timeout:2\n")
    script = (
        "import socket, sys; infos = socket.getaddrinfo(sys.argv[1], int(sys.argv[2]), proto=socket.IPPROTO_TCP);"
        "address = [i[4] for i in infos if i[0] == socket.AF_INET][0];"
        "socket.create_connection(address, timeout=5).close()"
    )
    deployment = f"{NAMESPACE}/resolver-{RUN_ID}"
    shell = 'mount --bind "$0" /etc/resolv.conf && exec "$1" -c "$2" "$3" "$4"'
    proc = runward_run(
        sensor.home,
        deployment,
        "resolver",
        ["unshare", "--mount", "--", "/bin/sh", "-c", shell, str(resolv), sys.executable, script, name, str(tcp.port)],
    )
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()

    def mine(r: Received) -> bool:
        return r.event.attribution.deployment == deployment

    found = reader.wait_for(
        mine,
        lambda f: any(
            r.event.detail.kind == "connect" and r.event.detail.protocol == "tcp"  # type: ignore[union-attr]
            for r in f
        ),
        timeout=10,
    )
    questions = sorted(
        (r.event.detail.name, r.event.detail.qtype)
        for r in found  # type: ignore[union-attr]
        if r.event.detail.kind == "dns"
    )
    assert questions == [(name, "A"), (name, "AAAA")]
    connects = {
        (c.protocol, c.address, c.port, c.dns_name)
        for c in (r.event.detail for r in found)  # type: ignore[union-attr]
        if c.kind == "connect"
    }
    assert ("udp", dns.ip, 53, None) in connects
    assert ("tcp", "127.0.0.1", tcp.port, name) in connects


GO_STYLE_RESOLVER = """
import os, select, socket, struct, sys
name, dns_ip, tcp_port, scratch = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
# Plain file writes and reads first: not DNS, and this cgroup has no DNS socket yet.
fd = os.open(scratch, os.O_RDWR | os.O_CREAT)
os.write(fd, b"\\x00" * 64); os.lseek(fd, 0, 0); os.read(fd, 64); os.close(fd)
# Go's resolver: a connected UDP socket, then write() and read(), never sendto/recvfrom.
question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0"
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.connect((dns_ip, 53))
os.write(udp.fileno(), struct.pack(">HHHHHH", 0x6f6f, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 1, 1))
assert select.select([udp], [], [], 5)[0], "no DNS answer"
reply = os.read(udp.fileno(), 512)
address = socket.inet_ntoa(reply[-4:])
socket.create_connection((address, tcp_port), timeout=5).close()
"""


def test_go_style_resolver_read_write_on_a_connected_udp_socket(
    sensor: SensorRun, reader: TopicReader, dns: DnsResponder, tcp: TcpServer, tmp_path: Path
) -> None:
    """read()/write() carry DNS on a UDP socket connected to a DNS port: they are seen through
    the socket send/receive tracepoints, which plain file reads and writes never reach."""
    name = f"go-{RUN_ID}.agents.internal"
    deployment = f"{NAMESPACE}/go-resolver-{RUN_ID}"
    proc = runward_run(
        sensor.home,
        deployment,
        "go-resolver",
        [sys.executable, "-c", GO_STYLE_RESOLVER, name, dns.ip, str(tcp.port), str(tmp_path / "f")],
    )
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()

    found = reader.wait_for(
        lambda r: r.event.attribution.deployment == deployment,
        lambda f: any(
            r.event.detail.kind == "connect" and r.event.detail.protocol == "tcp"  # type: ignore[union-attr]
            for r in f
        ),
        timeout=10,
    )
    questions = [
        (r.event.detail.name, r.event.detail.qtype)
        for r in found  # type: ignore[union-attr]
        if r.event.detail.kind == "dns"
    ]
    assert questions == [(name, "A")]
    connects = {
        (c.protocol, c.address, c.port, c.dns_name)
        for c in (r.event.detail for r in found)  # type: ignore[union-attr]
        if c.kind == "connect"
    }
    # The answer was read with read(): the sensor learnt the name of the address it connected to.
    assert ("tcp", "127.0.0.1", tcp.port, name) in connects


def test_sensor_says_plainly_when_kafka_is_not_there(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {**os.environ, "RUNWARD_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "sensor.cli", "sensor", "--kafka", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"runward sensor cannot start: Kafka at 127.0.0.1:{port} does not answer" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr  # a tracefs note at most, then the reason
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30
