"""`python -m edges.kubewatch` as an operator runs it: flags, errors, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from edges.kubewatch.watcher import cluster_config_available
from runward.core.topics import RAW_K8S
from tests.kafka_reading import read_records
from tests.kubewatch.test_watcher_replay import seeded


def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    done = subprocess.run(
        [sys.executable, "-m", "edges.kubewatch", "--kubeconfig", str(missing), "--kafka", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert str(missing) in done.stderr and "--kubeconfig" in done.stderr


def test_cluster_config_available(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    kubeconfig = tmp_path / "config"
    probe = "from edges.kubewatch.watcher import cluster_config_available as a; print(a())"
    run = lambda extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", probe], env={**env, "HOME": str(tmp_path), **extra}, capture_output=True, text=True
    ).stdout.strip()
    assert run({}) == "False"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    assert run({"KUBECONFIG": str(kubeconfig)}) == "True"
    assert cluster_config_available(kubeconfig) is True


def test_watch_publishes_and_stops_on_sigterm(kafka_bootstrap: str, tmp_path: Path) -> None:
    namespace = f"kw-{uuid.uuid4().hex[:8]}"
    server = seeded(namespace)
    with server.running():
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edges.kubewatch",
                "--kubeconfig",
                str(server.kubeconfig(tmp_path / "kubeconfig")),
                "--kafka",
                kafka_bootstrap,
                "--namespace",
                namespace,
                "--resource",
                "deployments",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            records = read_records(
                kafka_bootstrap,
                RAW_K8S.name,
                lambda v: (v.get("object") or {}).get("metadata", {}).get("namespace") == namespace,
                want=2,
                timeout=60,
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert sorted(key or "" for key, _ in records) == [f"{namespace}/planner", f"{namespace}/researcher"]
    assert {v["object"]["kind"] for _, v in records} == {"Deployment"}
    assert server.lists("pods") == [], "--resource limits what is watched"
    assert "published" in output
