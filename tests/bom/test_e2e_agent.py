"""End to end on the real kernel: a real agent under `runward run` and the eBPF sensor, its
MCP servers behind the gateway, ingest and bom as real stages. The agent's own ground truth
(sys.modules) is what the AI-BOM must list."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from fastapi.testclient import TestClient

from runward.control.api.app import create_app
from runward.control.broker import free_port
from runward.control.cli import main as bom_cli
from runward.core.config import Settings
from runward.core.contracts import AiBom, BomDelta
from runward.core.topics import AIBOM, BOM_DELTA
from tests.bom.stage_util import REPO, own_broker, running_stages
from tests.kafka_reading import read_records

pytestmark = [pytest.mark.e2e, pytest.mark.kernel]


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root for eBPF and cgroups"
    try:
        from sensor.attribution.cgroupfs import cgroup2_root
        from sensor.cli import sensor_unavailable_reason
        from sensor.workloads import run_workload  # noqa: F401
    except ImportError as exc:
        return f"the sensor package or its local runner is not available ({exc})"
    if cgroup2_root() is None:
        return "no cgroup v2 hierarchy for the local runner"
    return sensor_unavailable_reason()


_reason = _unavailable()
if _reason:
    pytest.skip(f"AI-BOM end-to-end needs the sensor: {_reason}", allow_module_level=True)

DEPLOYMENT = f"agents-e2e/bom-agent-{uuid.uuid4().hex[:6]}"
OMITTED = "pyyaml"  # the agent imports yaml; its requirements will not say so


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("bom-e2e")
    with (
        own_broker(home) as bootstrap,
        running_stages(["ingest", "bom"], bootstrap, home),
        sensor_running(bootstrap, home),
    ):
        yield bootstrap, home


def sensor_running(bootstrap: str, home: Path) -> Any:
    from contextlib import contextmanager

    @contextmanager
    def run() -> Iterator[None]:
        port = free_port()
        env = {**os.environ, "RUNWARD_HOME": str(home), "PYTHONPATH": str(REPO)}
        with open(home / "sensor.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sensor.cli",
                    "sensor",
                    "--kafka",
                    bootstrap,
                    "--no-kubernetes",
                    "--metrics-port",
                    str(port),
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 90  # includes a first build of the BPF object
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"sensor exited {proc.returncode}: {(home / 'sensor.log').read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics.json", timeout=2) as r:
                        if json.loads(r.read()).get("runward_sensor_ready", {}).get("") == 1:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("sensor not ready within 90 s")
                time.sleep(0.2)
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    return run()


def run_agent(bootstrap: str, home: Path) -> dict[str, Any]:
    from sensor.workloads import run_workload

    truth = home / "ground-truth.json"
    env = {**os.environ, "RUNWARD_HOME": str(home), "PYTHONPATH": str(REPO)}
    with open(home / "agent.log", "wb") as log:
        workload = run_workload(
            DEPLOYMENT,
            "bom-agent",
            1,
            [
                sys.executable,
                str(Path(__file__).with_name("e2e_agent.py")),
                str(truth),
                DEPLOYMENT,
                bootstrap,
                str(REPO),
            ],
            home=home,
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            codes = workload.wait(timeout=60)
        finally:
            workload.close()
    assert codes == [0], (home / "agent.log").read_text()[-3000:]
    return dict(json.loads(truth.read_text()))


def site_packages_roots(modules: dict[str, str]) -> set[str]:
    """Top-level modules the agent loaded from site-packages: what it really imported."""
    return {
        name.split(".")[0]
        for name, path in modules.items()
        if "/site-packages/" in path and not name.split(".")[0].startswith("__")
    }


def test_the_ai_bom_lists_what_the_agent_really_loaded(world: tuple[str, Path]) -> None:
    bootstrap, home = world
    truth = run_agent(bootstrap, home)
    roots = site_packages_roots(truth["modules"])
    assert {"yaml", "httpx", "mcp", "anyio"} <= roots

    # Declare everything the agent imported, pinned to what is installed, except PyYAML.
    by_module = metadata.packages_distributions()
    dists = {d for root in roots for d in by_module.get(root, [])}
    pins = sorted(f"{d}=={metadata.version(d)}" for d in dists if d.lower() != OMITTED)
    requirements = home / "requirements.txt"
    requirements.write_text("\n".join(pins) + "\n")
    assert (
        bom_cli(["declare", "--deployment", DEPLOYMENT, "--requirements", str(requirements), "--kafka", bootstrap]) == 0
    )

    def complete(value: dict[str, Any]) -> bool:
        return (
            value["deployment"] == DEPLOYMENT
            and any(f["kind"] == "undeclared_package" and f["subject"] == OMITTED for f in value["findings"])
            and any(f["kind"] == "late_tool" for f in value["findings"])
        )

    records = read_records(bootstrap, BOM_DELTA.name, complete, want=1, timeout=60)
    assert records, f"no delta flagging {OMITTED}; see logs in {home}"
    delta = BomDelta.model_validate(records[-1][1])
    found = {(f.kind, f.subject) for f in delta.findings}
    assert ("late_tool", "ops/delete_records") in found
    flagged = {s for k, s in found if k == "undeclared_package"}
    assert {"httpx", "anyio", "mcp"}.isdisjoint(flagged)  # declared, so not flagged

    boms = read_records(
        bootstrap,
        AIBOM.name,
        lambda v: v["deployment"] == DEPLOYMENT and v["revision"] == delta.aibom_revision,
        want=1,
        timeout=30,
    )
    bom = AiBom.model_validate(boms[0][1]).cyclonedx
    (home / "aibom.cdx.json").write_text(json.dumps(bom, indent=1))  # kept for whoever debugs a failure
    (home / "bom-delta.json").write_text(delta.model_dump_json(indent=1))
    imports = {
        p["value"].split(".")[0]: c
        for c in bom["components"]
        for p in c.get("properties", [])
        if p["name"] == "runward:python:import"
    }
    missing = roots - set(imports)
    assert not missing, f"imported by the agent but not in its AI-BOM: {sorted(missing)}"
    for component in imports.values():  # a version, when the BOM has one, is the installed one
        if component.get("version"):
            assert component["version"] == metadata.version(component["name"])
    servers = {s["name"]: s for s in bom["services"] if s["bom-ref"].startswith("mcp-server:")}
    assert {"time", "ops"} <= set(servers)
    late = {t["name"]: {p["name"]: p["value"] for p in t["properties"]} for t in servers["ops"]["services"]}
    assert late["delete_records"]["runward:mcp:registered"] == "after-startup"
    assert late["get_status"]["runward:mcp:registered"] == "startup"

    # The platform team gets the same artifacts from the API: a downloadable, valid CycloneDX 1.6 file.
    token = "viewer-token-bom-e2e-0123456789"
    client = TestClient(
        create_app(Settings(db=f"sqlite:///{home / 'runward.db'}", kafka=bootstrap, api_tokens=f"ops:{token}:viewer"))
    )
    namespace, _, name = DEPLOYMENT.partition("/")
    auth = {"Authorization": f"Bearer {token}"}
    served = client.get(f"/v1/agents/{namespace}/{name}/aibom", headers=auth)
    assert served.status_code == 200 and "cyclonedx" in served.headers["content-type"]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(served.text) is None
    assert json.loads(served.text)["specVersion"] == "1.6"
    served_delta = client.get(f"/v1/agents/{namespace}/{name}/bom-delta", headers=auth).json()
    kinds = {(f["kind"], f["subject"]) for f in served_delta["findings"]}
    assert ("undeclared_package", OMITTED) in kinds and ("late_tool", "ops/delete_records") in kinds
