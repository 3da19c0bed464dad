"""File formats the loaders accept, as the tools that produce them write them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from jobs.reconciliation import (
    load_audit_events,
    load_cloudtrail,
    load_deployments,
    load_iam_policies,
    load_rbac,
)
from tests.posture.factories import DATA, audit_event, cluster_role, rule


def test_audit_log_formats(tmp_path: Path) -> None:
    assert len(load_audit_events(DATA / "audit2rbac_demo.log")) == 37
    e1, e2, e3 = (audit_event("get", "pods", namespace="ns1") for _ in range(3))
    webhook = tmp_path / "webhook.jsonl"  # the webhook backend posts EventList batches
    webhook.write_text(
        json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [e1, e2]})
        + "\n"
        + json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [e3]})
        + "\n"
    )
    pretty = tmp_path / "one.json"
    pretty.write_text(json.dumps(e1, indent=2))
    assert [e["auditID"] for e in load_audit_events(webhook)] == [e1["auditID"], e2["auditID"], e3["auditID"]]
    assert load_audit_events(pretty) == [e1]


def test_cloudtrail_gz_directory_and_digest_files(tmp_path: Path) -> None:
    records = json.loads((DATA / "cloudtrail_agent_synthetic.json").read_text())["Records"]
    region = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1"
    region.mkdir(parents=True)
    with gzip.open(region / "a.json.gz", "wt") as fh:
        json.dump({"Records": records[:4]}, fh)
    with gzip.open(region / "b.json.gz", "wt") as fh:
        json.dump({"Records": records[4:]}, fh)
    with gzip.open(region / "digest.json.gz", "wt") as fh:
        json.dump({"digestStartTime": "2017-09-11T20:00:00Z"}, fh)  # digest files have no Records
    assert load_cloudtrail(tmp_path) == records


def test_iam_policy_cli_shapes(tmp_path: Path) -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    (tmp_path / "inline.json").write_text(
        json.dumps({"RoleName": "r", "PolicyName": "agent-inline", "PolicyDocument": doc})
    )
    (tmp_path / "managed.json").write_text(json.dumps({"PolicyVersion": {"Document": doc, "VersionId": "v3"}}))
    names = sorted(p.name for p in load_iam_policies(tmp_path))
    assert names == ["agent-inline", "managed"]
    assert all(p.statements[0].actions == ("s3:GetObject",) for p in load_iam_policies(tmp_path))


def test_rbac_and_deployments_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(json.dumps(cluster_role("from-json", rule(["get"], ["pods"]))))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text((DATA / "rbac_sa1_overbroad.yaml").read_text())
    inventory = load_rbac(tmp_path)
    assert ("ClusterRole", None, "from-json") in inventory.roles and len(inventory.bindings) == 15  # 8 CRB + 7 RB
    assert len(load_deployments(DATA / "agent_deployments.yaml", DATA / "rbac_sa1_overbroad.yaml")) == 6
