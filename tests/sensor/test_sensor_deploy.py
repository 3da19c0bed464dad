"""The DaemonSet manifest: valid Kubernetes objects, least privilege, flags the CLI accepts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from runward.control.cli import main
from sensor import cli

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "base" / "sensor" / "daemonset.yaml"


def objects() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


def typed(doc: dict[str, Any], kind: str) -> Any:
    # Through the client's own models: a misspelt field comes back as None and fails the checks.
    return ApiClient()._ApiClient__deserialize(doc, kind)  # type: ignore[attr-defined]


def test_manifest_holds_the_sensor_and_its_rbac() -> None:
    assert set(objects()) == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet"}


def test_daemonset_is_least_privilege() -> None:
    ds = typed(objects()["DaemonSet"], "V1DaemonSet")
    pod = ds.spec.template.spec
    assert not pod.host_pid and not pod.host_network and not pod.host_ipc
    assert pod.service_account_name == "runward-sensor"
    (container,) = pod.containers
    sc = container.security_context
    assert sc.privileged is False and sc.allow_privilege_escalation is False and sc.read_only_root_filesystem
    assert sc.capabilities.drop == ["ALL"]
    assert sorted(sc.capabilities.add) == ["BPF", "PERFMON", "SYS_RESOURCE"]
    mounts = {m.mount_path: m for m in container.volume_mounts}
    for host_path in ("/sys/kernel/btf", "/sys/fs/cgroup", "/sys/kernel/tracing"):
        assert mounts[host_path].read_only, host_path
    writable = [m.mount_path for m in container.volume_mounts if not m.read_only]
    volumes = {v.name: v for v in pod.volumes}
    assert all(volumes[m.name].empty_dir is not None for m in container.volume_mounts if not m.read_only), writable
    env = {e.name: e for e in container.env}
    assert env["NODE_NAME"].value_from.field_ref.field_path == "spec.nodeName"


def test_cluster_role_only_reads_pods_and_replicasets() -> None:
    role = typed(objects()["ClusterRole"], "V1ClusterRole")
    granted = {(g, r, v) for rule in role.rules for g in rule.api_groups for r in rule.resources for v in rule.verbs}
    assert granted == {(g, r, v) for g, r in (("", "pods"), ("apps", "replicasets")) for v in ("get", "list", "watch")}
    binding = typed(objects()["ClusterRoleBinding"], "V1ClusterRoleBinding")
    assert binding.role_ref.name == role.metadata.name
    assert [(s.kind, s.name, s.namespace) for s in binding.subjects] == [
        ("ServiceAccount", "runward-sensor", objects()["ServiceAccount"]["metadata"]["namespace"]),
    ]


def test_container_command_is_accepted_by_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    command = objects()["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["runward", "sensor"]
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(cli, "cmd_sensor", lambda args: seen.append(args) or 0)
    assert main(command[1:]) == 0
    assert [(a.kubernetes, a.metrics_port) for a in seen] == [(True, 9464)]
