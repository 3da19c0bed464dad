"""What the watcher publishes for one object: kind, key, redaction, and the revision it names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from edges.kubewatch.objects import LAST_APPLIED, RevisionIndex, object_key, prepare
from runward.core.contracts.revision import template_hash
from runward.core.redaction import REDACTED

FIXTURES = Path(__file__).parent / "fixtures"
SENSOR_FIXTURES = Path(__file__).parent.parent / "sensor" / "fixtures" / "k8s"
BOM_DEPLOYMENT = Path(__file__).parent.parent / "data" / "bom" / "deployment.yaml"


def deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in json.loads((FIXTURES / "deployments.json").read_text())}


def test_list_items_get_kind_and_bookkeeping_is_dropped() -> None:
    raw = deployments()["researcher"]
    raw.pop("kind")
    raw.pop("apiVersion")
    assert raw["metadata"]["managedFields"] and LAST_APPLIED in raw["metadata"]["annotations"]
    obj = prepare(raw, "Deployment", "apps/v1")
    assert (obj["kind"], obj["apiVersion"]) == ("Deployment", "apps/v1")
    assert "managedFields" not in obj["metadata"]
    assert LAST_APPLIED not in obj["metadata"]["annotations"]
    assert obj["metadata"]["annotations"]["runward.io/autonomy"] == "low"
    assert "managedFields" in raw["metadata"]  # the input is not modified


def test_secret_env_values_are_redacted_and_references_kept() -> None:
    manifest = next(d for d in yaml.safe_load_all(BOM_DEPLOYMENT.read_text()) if d["kind"] == "Deployment")
    obj = prepare(manifest, "Deployment", "apps/v1")
    env = {e["name"]: e for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OPENAI_API_KEY"]["value"] == REDACTED
    assert env["CACHE_URL"]["value"] == f"redis://default:{REDACTED}@cache.agents.svc:6379/0"
    assert env["OPENAI_MODEL"]["value"] == "gpt-4o-2024-08-06"
    assert env["RAG_URL"]["value"] == "https://kb.internal.example.com/search"
    assert env["DB_PASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": "db", "key": "password"}}
    assert "sk-proj-" not in json.dumps(obj) and "s3cr3t" not in json.dumps(obj)


def test_keys_follow_the_topic_table() -> None:
    rbac = json.loads((FIXTURES / "rbac.json").read_text())
    assert object_key(deployments()["planner"]) == "agents/planner"
    assert object_key(rbac["clusterroles"][0]) == "agents-secret-reader"  # cluster-scoped: its name


def test_revisions_across_deployment_replicaset_and_pods() -> None:
    index = RevisionIndex()
    researcher = deployments()["researcher"]
    pods = json.loads((SENSOR_FIXTURES / "pods.json").read_text())["items"]
    pod = next(p for p in pods if p["metadata"]["name"] == "researcher-6f7b9c8d4-k2x9z")
    pod = {"kind": "Pod", **pod}
    # The ReplicaSet not seen yet: a Deployment's revision is its template; a Pod has none yet.
    assert index.revision(researcher) is not None
    assert index.revision(researcher).pod_template_hash is None  # type: ignore[union-attr]
    assert index.revision(pod) is None

    rs = json.loads((SENSOR_FIXTURES / "replicasets.json").read_text())[0]
    index.observe("ADDED", rs)
    index.observe("ADDED", pod)
    for obj in (researcher, rs, pod):
        revision = index.revision(obj)
        assert revision is not None
        assert revision.template_hash == template_hash(researcher["spec"]["template"])
        assert revision.pod_template_hash == "6f7b9c8d4"
        assert revision.image_digests == {"agent": ["sha256:" + "ab" * 32]}

    # Edited, the controller not caught up (revision annotation unchanged): the new template has no ReplicaSet yet.
    edited = json.loads(json.dumps(researcher))
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/researcher-agent:1.5.0"
    revision = index.revision(edited)
    assert revision is not None and revision.pod_template_hash is None and revision.image_digests == {}

    index.observe("DELETED", pod)
    assert index.revision(researcher).image_digests == {}  # type: ignore[union-attr]
    index.observe("DELETED", rs)
    assert index.revision(researcher).pod_template_hash is None  # type: ignore[union-attr]
