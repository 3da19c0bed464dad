"""docker-compose.yml must stay valid and start in order: no engine runs here, but the Compose CLI
validates and resolves the file without one, and every command it runs must exist in the CLI."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "bom", "profiler", "correlator", "enforcer")


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed: `make deps` installs the Debian package (APT_PACKAGES)")
    return subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@functools.cache
def services() -> dict[str, Any]:
    """The services as Compose resolves them (anchors, merges, defaults)."""
    result = _compose()
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)["services"]
    return resolved


def runward_services() -> dict[str, Any]:
    return {name: s for name, s in services().items() if s.get("image") == "runward:local"}


def test_docker_compose_config_is_clean() -> None:
    result = _compose("-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_compose_runs_every_stage_the_api_and_the_receiver_against_real_kafka_and_postgres() -> None:
    svc = services()
    assert svc["kafka"]["image"].startswith("apache/kafka:")
    assert svc["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert svc["postgres"]["image"].startswith("postgres:")
    for stage in STAGES:
        assert svc[stage]["command"] == ["stage", stage]
    assert svc["api"]["command"] == ["api"]
    assert svc["otlp"]["command"][0] == "otlp"


def _published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """target port -> (host address, host port)"""
    out = {}
    for port in service.get("ports", []):
        host, published, target = re.fullmatch(r"(?:([\d.]+):)?(\d+):(\d+)(?:/tcp)?", str(port)).groups()  # type: ignore[union-attr]
        out[int(target)] = (host or "0.0.0.0", int(published))
    return out


def test_host_reaches_the_api_the_receiver_and_kafka_on_loopback() -> None:
    svc = services()
    assert _published(svc["api"])[8080] == ("127.0.0.1", 8080)
    otlp_port = int(svc["otlp"]["command"][svc["otlp"]["command"].index("--port") + 1])
    assert otlp_port == 4318 and _published(svc["otlp"])[4318] == ("127.0.0.1", 4318)
    assert "--host" in svc["otlp"]["command"] and "0.0.0.0" in svc["otlp"]["command"]
    # Kafka: the EXTERNAL listener is advertised on the address the host uses and published there.
    env = svc["kafka"]["environment"]
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    external_port = int(listeners["EXTERNAL"].rsplit(":", 1)[1])
    host, port = advertised["EXTERNAL"].rsplit(":", 1)
    assert host in ("localhost", "127.0.0.1") and _published(svc["kafka"])[external_port] == ("127.0.0.1", int(port))
    assert advertised["INTERNAL"] == runward_services()["ingest"]["environment"]["RUNWARD_KAFKA"]
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) == set(protocols)


def test_start_order_and_health() -> None:
    svc = services()
    for name in ("kafka", "postgres"):
        assert svc[name]["healthcheck"]["test"], name
    init = svc["init"]
    assert init["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    assert init["restart"] == "no"
    for name, service in runward_services().items():
        if name == "init":
            continue
        assert service["depends_on"] == {"init": {"condition": "service_completed_successfully"}}, name
        probe = " ".join(service["healthcheck"]["test"])
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", probe).group(1))  # type: ignore[union-attr]
        if name in STAGES:
            assert port == int(service["environment"]["RUNWARD_METRICS_PORT"]) and "/metrics" in probe, name
        else:
            assert "/healthz" in probe, name
    # Topics are created with the partition count every stage runs with.
    created = re.search(r'ensure_topics\("kafka:9092", (\d+)\)', " ".join(init["entrypoint"]))
    assert created is not None
    assert {s["environment"]["RUNWARD_PARTITIONS"] for s in runward_services().values()} == {created.group(1)}


def _runward() -> str:
    """The project's own `runward` script, beside this interpreter; else one on PATH."""
    beside = Path(sys.executable).parent / "runward"
    return str(beside) if beside.exists() else shutil.which("runward") or "runward"


def _commands() -> dict[str, list[str]]:
    commands: dict[str, list[str]] = {}
    for name, service in runward_services().items():
        if service.get("entrypoint"):
            script = " ".join(service["entrypoint"])
            for index, found in enumerate(re.findall(r"\brunward ((?:[a-z-]+ ?)+)", script)):
                commands[f"{name}#{index}"] = found.split()
        else:
            commands[name] = list(service["command"])
    return commands


def test_every_service_command_exists_in_the_cli() -> None:
    commands = _commands()
    assert {"init#0", "api", "otlp", *STAGES} <= set(commands)
    for name, argv in sorted(commands.items()):
        result = subprocess.run([_runward(), *argv, "--help"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{name}: runward {' '.join(argv)} --help\n{result.stderr[-800:]}"
