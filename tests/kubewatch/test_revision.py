"""A Deployment revision is its pod template: what changes it and what does not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from runward.core.contracts.revision import (
    PodTemplateRevision,
    pod_image_digests,
    pod_template_revision,
    same_revision,
    template_hash,
)

FIXTURES = Path(__file__).parent / "fixtures"
SENSOR_FIXTURES = Path(__file__).parent.parent / "sensor" / "fixtures" / "k8s"


def deployment(name: str = "planner") -> dict[str, Any]:
    return next(d for d in json.loads((FIXTURES / "deployments.json").read_text()) if d["metadata"]["name"] == name)


def revision_of(dep: dict[str, Any]) -> str:
    return template_hash(dep["spec"]["template"])


def _scale(d: dict[str, Any]) -> None:
    d["spec"]["replicas"] = 5
    d["metadata"]["generation"] += 1


def _deployment_annotation(d: dict[str, Any]) -> None:
    d["metadata"]["annotations"]["runward.io/autonomy"] = "medium"


def _deployment_label(d: dict[str, Any]) -> None:
    d["metadata"]["labels"]["team"] = "research"


def _template_label(d: dict[str, Any]) -> None:
    d["spec"]["template"]["metadata"]["labels"]["team"] = "research"


def _rollout_restart(d: dict[str, Any]) -> None:
    # What `kubectl rollout restart` writes: a new ReplicaSet, the same agent.
    d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "2025-11-22T10:00:00Z"


def _placement(d: dict[str, Any]) -> None:
    spec = d["spec"]["template"]["spec"]
    spec["nodeSelector"] = {"pool": "gpu"}
    spec["tolerations"] = [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    spec["containers"][0]["resources"] = {"limits": {"cpu": "2"}}


def _status(d: dict[str, Any]) -> None:
    d["status"]["readyReplicas"] = 0
    d["metadata"]["resourceVersion"] = "4999999"


NOT_REVISIONS = [
    _scale,
    _deployment_annotation,
    _deployment_label,
    _template_label,
    _rollout_restart,
    _placement,
    _status,
]


@pytest.mark.parametrize("change", NOT_REVISIONS, ids=lambda f: f.__name__.strip("_"))
def test_changes_that_are_not_revisions(change: Any) -> None:
    before = deployment()
    after = copy.deepcopy(before)
    change(after)
    assert after != before
    assert revision_of(after) == revision_of(before)


def _image(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/planner-agent:0.9.1"


def _env_value(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "claude-opus-4"


def _env_added(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "HTTPS_PROXY", "value": "http://p:3128"})


def _env_secret_ref(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["env"][1]["valueFrom"]["secretKeyRef"]["name"] = "stolen"


def _args(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["args"] = ["--mcp-config", "/tmp/servers.json"]


def _command(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["command"] = ["/bin/sh", "-c"]


def _mcp_config_map(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = "planner-mcp-v2"


def _model_annotation(d: dict[str, Any]) -> None:
    d["spec"]["template"]["metadata"]["annotations"]["runward.io/models"] = "openai/gpt-4o"


def _service_account(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["serviceAccountName"] = "admin"


def _sidecar(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": "docker.io/library/nginx:1.27"})


def _host_network(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["hostNetwork"] = True


REVISIONS = [
    _image,
    _env_value,
    _env_added,
    _env_secret_ref,
    _args,
    _command,
    _mcp_config_map,
    _model_annotation,
    _service_account,
    _sidecar,
    _host_network,
]


@pytest.mark.parametrize("change", REVISIONS, ids=lambda f: f.__name__.strip("_"))
def test_changes_that_are_revisions(change: Any) -> None:
    before = deployment()
    after = copy.deepcopy(before)
    change(after)
    assert revision_of(after) != revision_of(before)


def test_replicaset_template_hashes_like_its_deployment() -> None:
    """The controller copies the template and adds pod-template-hash: both name one revision."""
    rs = json.loads((SENSOR_FIXTURES / "replicasets.json").read_text())[0]
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == "6f7b9c8d4"
    assert revision_of(deployment("researcher")) == template_hash(rs["spec"]["template"])
    assert revision_of(deployment("researcher")) != revision_of(deployment("planner"))


def test_image_digests_from_pod_status() -> None:
    pods = json.loads((SENSOR_FIXTURES / "pods.json").read_text())["items"]
    researcher = [p for p in pods if p["metadata"].get("labels", {}).get("pod-template-hash") == "6f7b9c8d4"]
    assert len(researcher) == 2
    digests = [pod_image_digests(p) for p in researcher]
    assert digests[0] == {"agent": "sha256:" + "ab" * 32}
    revision = pod_template_revision(deployment("researcher")["spec"]["template"], "6f7b9c8d4", digests)
    assert revision.image_digests == {"agent": ["sha256:" + "ab" * 32]}
    assert revision.pod_template_hash == "6f7b9c8d4"


def test_a_moved_tag_is_another_revision_under_the_same_template() -> None:
    template = deployment()["spec"]["template"]
    old = pod_template_revision(template, "abc", [{"planner": "sha256:" + "1" * 64}])
    moved = pod_template_revision(template, "abc", [{"planner": "sha256:" + "2" * 64}])
    unknown = pod_template_revision(template, None, [])
    assert not same_revision(old, moved)
    assert same_revision(old, unknown) and same_revision(unknown, moved)  # digests refine only when known
    mixed = pod_template_revision(
        template, "abc", [{"planner": "sha256:" + "1" * 64}, {"planner": "sha256:" + "2" * 64}]
    )
    assert mixed.image_digests["planner"] == ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    other = PodTemplateRevision(template_hash=template_hash({"spec": {"containers": []}}))
    assert not same_revision(unknown, other)
