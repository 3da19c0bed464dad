"""The watcher's manifests: valid objects, read-only RBAC that covers exactly what it watches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import ApiClient

from edges.kubewatch import __main__ as cli
from edges.kubewatch.resources import RESOURCES

BASE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "base" / "watcher"


def objects() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    docs = [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((BASE / name).read_text())]
    return {doc["kind"]: doc for doc in docs}


def typed(doc: dict[str, Any], kind: str) -> Any:
    # Through the client's models: a misspelt field comes back as None and fails the checks.
    return ApiClient()._ApiClient__deserialize(doc, kind)  # type: ignore[attr-defined]


def test_kustomization_holds_the_watcher_and_its_rbac() -> None:
    assert set(objects()) == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"}
    assert sorted(p.name for p in BASE.glob("*.yaml")) == sorted(
        ["kustomization.yaml", *yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]]
    )


def test_rbac_is_read_only_and_covers_what_is_watched() -> None:
    role = typed(objects()["ClusterRole"], "V1ClusterRole")
    granted = set()
    for rule in role.rules:
        assert sorted(rule.verbs) == ["get", "list", "watch"]
        assert not rule.resource_names and not rule.non_resource_urls
        granted |= {(group, resource) for group in rule.api_groups for resource in rule.resources}
    needed = {(r.api_version.rpartition("/")[0], r.name) for r in RESOURCES}
    assert granted == needed  # nothing more (no secrets, no subresources), nothing less
    binding = typed(objects()["ClusterRoleBinding"], "V1ClusterRoleBinding")
    account = objects()["ServiceAccount"]["metadata"]
    assert binding.role_ref.name == role.metadata.name and binding.role_ref.kind == "ClusterRole"
    (subject,) = binding.subjects
    assert (subject.kind, subject.name, subject.namespace) == ("ServiceAccount", account["name"], account["namespace"])


def test_deployment_runs_runward_watch_unprivileged() -> None:
    deployment = typed(objects()["Deployment"], "V1Deployment")
    assert deployment.spec.replicas == 1 and deployment.spec.strategy.type == "Recreate"
    pod = deployment.spec.template.spec
    assert pod.service_account_name == objects()["ServiceAccount"]["metadata"]["name"]
    assert pod.security_context.run_as_non_root and not pod.host_network
    (container,) = pod.containers
    assert container.args == ["watch"]  # the image's entrypoint is `runward`
    sc = container.security_context
    assert sc.allow_privilege_escalation is False and sc.read_only_root_filesystem
    assert sc.capabilities.drop == ["ALL"] and not sc.capabilities.add
    assert not container.ports  # nothing listens
    # In the cluster it takes no flags: in-cluster config, RUNWARD_KAFKA from the environment.
    args = cli.parser().parse_args(container.args[1:])
    assert args.kubeconfig is None and args.namespace == []
    # RUNWARD_KAFKA (and the rest of the settings) from the shared ConfigMap.
    assert [e.config_map_ref.name for e in container.env_from] == ["runward-config"]
