"""The bom stage as a real Faust worker: enriched events and `runward declare` in,
CycloneDX AI-BOM and delta out on Kafka and in the store the API serves from."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runward.control.cli import main as bom_cli
from runward.core.contracts import AiBom, BomDelta
from runward.core.store import Store
from runward.core.topics import AIBOM, BOM_DELTA, ENRICHED
from tests.bom.factories import SITE, chat, connected, event, opened, tools_list
from tests.bom.stage_util import own_broker, publish, running_stages
from tests.kafka_reading import read_records

DATA = Path(__file__).resolve().parents[1] / "data" / "bom"
DEPLOYMENT = "agents/support-bot"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    home = tmp_path_factory.mktemp("bom-stage")
    with own_broker(home) as bootstrap, running_stages(["bom"], bootstrap, home) as db_url:
        yield bootstrap, db_url


def test_runtime_bom_and_delta_are_published_and_stored(pipeline: tuple[str, str]) -> None:
    bootstrap, db_url = pipeline
    assert (
        bom_cli(
            [
                "declare",
                "--deployment",
                DEPLOYMENT,
                "--manifest",
                str(DATA / "deployment.yaml"),
                "--requirements",
                str(DATA / "requirements.txt"),
                "--mcp-config",
                str(DATA / "mcp.json"),
                "--kafka",
                bootstrap,
            ]
        )
        == 0
    )
    publish(
        bootstrap,
        ENRICHED,
        [
            (DEPLOYMENT, e)
            for e in [
                event("exec", {"binary": "/usr/local/bin/python3.11"}, at=0),
                opened(f"{SITE}/httpx/__pycache__/__init__.cpython-311.pyc", at=1),
                opened(f"{SITE}/httpx-0.28.1.dist-info/METADATA", at=1),
                opened(f"{SITE}/yaml/__pycache__/__init__.cpython-311.pyc", at=1),
                opened(f"{SITE}/PyYAML-6.0.2.dist-info/METADATA", at=1),
                opened(f"{SITE}/requests/__pycache__/__init__.cpython-311.pyc", at=2),
                chat("openai", "gpt-4o-2024-08-06", "gpt-4o-2024-11-20", at=3),
                tools_list("time", ["get_current_time"], at=3),
                tools_list("time", ["get_current_time", "delete_records"], at=40),
                connected("pastebin.com", "104.20.67.143", at=41),
            ]
        ],
    )

    # Revisions: the exec (first evidence); the package burst at t=1..2 published by the import
    # at t=2 (two seconds after the last revision); then each AI-relevant change at once:
    # the chat, both tool lists and the endpoint.
    boms = read_records(bootstrap, AIBOM.name, lambda v: v["deployment"] == DEPLOYMENT, want=6, timeout=45)
    latest = AiBom.model_validate(max((v for _, v in boms), key=lambda v: v["revision"]))
    assert latest.revision == 6 and latest.lifecycle == "operations"
    refs = {c["bom-ref"] for c in latest.cyclonedx["components"]}
    assert {"pypi:httpx@0.28.1", "pypi:pyyaml@6.0.2", "pypi:requests@unknown", "model:openai/gpt-4o-2024-08-06"} <= refs

    def final(value: dict) -> bool:  # type: ignore[type-arg]
        return value["deployment"] == DEPLOYMENT and value["aibom_revision"] == 6

    ((_, delta_json),) = read_records(bootstrap, BOM_DELTA.name, final, want=1, timeout=30)
    delta = BomDelta.model_validate(delta_json)
    found = {(f.kind, f.subject) for f in delta.findings}
    assert {
        ("undeclared_package", "requests"),
        ("version_drift", "pyyaml"),
        ("model_drift", "openai/gpt-4o-2024-08-06"),
        ("late_tool", "time/delete_records"),
        ("undeclared_endpoint", "pastebin.com:443/tcp"),
    } <= found
    assert delta.declared_bom is not None and delta.declared_bom["metadata"]["lifecycles"] == [{"phase": "build"}]

    store, deadline = Store(db_url), time.monotonic() + 15
    while (
        time.monotonic() < deadline
        and (store.latest_artifact(DEPLOYMENT, "bom_delta") or {}).get("revision") != delta.revision
    ):
        time.sleep(0.3)
    assert AiBom.model_validate(store.latest_artifact(DEPLOYMENT, "aibom")).revision == 6
    assert BomDelta.model_validate(store.latest_artifact(DEPLOYMENT, "bom_delta")).revision == delta.revision


def test_declare_refuses_unreadable_input_before_publishing(pipeline: tuple[str, str], tmp_path: Path) -> None:
    bootstrap, _ = pipeline
    bad = tmp_path / "requirements.txt"
    bad.write_text("httpx ==> 1\n")
    assert bom_cli(["declare", "--deployment", DEPLOYMENT, "--requirements", str(bad), "--kafka", bootstrap]) == 1
    assert (
        bom_cli(
            [
                "declare",
                "--deployment",
                "agents/other",
                "--manifest",
                str(DATA / "deployment.yaml"),
                "--kafka",
                bootstrap,
            ]
        )
        == 1
    )
