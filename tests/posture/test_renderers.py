"""JSON, Markdown and HTML renderings of the report attached to a deployment ticket."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import yaml

from jobs.reconciliation import (
    RbacInventory,
    ReconciliationReport,
    assess_service_accounts,
    build_report,
    render_html,
    render_json,
    render_markdown,
)
from tests.posture.factories import audit_event, binding, cluster_role, rule, sa_subject


def test_json_round_trips_through_the_strict_model(full_report: ReconciliationReport) -> None:
    text = render_json(full_report)
    data = json.loads(text)
    assert data["kubernetes"]["granted_count"] == 39 and data["aws"]["used_count"] == 4
    assert data["schema_version"] == 1
    assert ReconciliationReport.model_validate_json(text) == full_report


def test_markdown_headline_rows_and_proposal(full_report: ReconciliationReport) -> None:
    md = render_markdown(full_report)
    assert md.startswith("# Declared vs observed permissions: agent ns1/research-agent\n")
    assert "2017-09-11 19:55:05 UTC → 2017-09-11 20:29:04 UTC" in md
    assert "**Kubernetes RBAC: granted 39, used 2** — **37 unused (95%)**, 4 denied attempt(s)" in md
    assert "**AWS IAM: granted 9, used 4** — **5 unused (56%)**, 2 denied attempt(s)" in md

    k8s_table = md.split("## Kubernetes RBAC", 1)[1].split("### Denied attempts", 1)[0]
    rows = [line for line in k8s_table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 39
    unused_rows = [r for r in rows if r.startswith("| **UNUSED** | **`")]
    assert len(unused_rows) == 37
    assert sum(r.startswith("| used | `") for r in rows) == 2
    assert any("`* batch:*` (wildcard)" in r for r in unused_rows)

    block = re.search(r"### Proposed least-privilege RBAC\n\n```yaml\n(.*?)```", md, re.S)
    assert block is not None
    assert list(yaml.safe_load_all(block.group(1))) == full_report.kubernetes.proposed_rbac
    assert "| `list core:nodes (cluster-scope)` | 1 | 403 | **no** |" in md


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.row_classes: list[str] = []
        self.tags: list[str] = []
        self.headlines: list[str] = []
        self._in_headline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        cls = dict(attrs).get("class") or ""
        if tag == "tr" and cls:
            self.row_classes.append(cls)
        if tag == "p" and cls == "headline":
            self._in_headline = True
            self.headlines.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_headline = False

    def handle_data(self, data: str) -> None:
        if self._in_headline:
            self.headlines[-1] += data


def test_html_highlights_unused_rows(full_report: ReconciliationReport) -> None:
    page = render_html(full_report)
    parser = _Rows()
    parser.feed(page)
    assert parser.row_classes.count("unused") == 37 + 5  # RBAC rows + IAM rows
    assert parser.row_classes.count("used") == 2 + 4
    assert parser.headlines[0].startswith("Kubernetes RBAC: granted 39, used 2 — 37 unused (95%)")
    assert parser.headlines[1].startswith("AWS IAM: granted 9, used 4 — 5 unused (56%)")
    assert "tr.unused { background" in page  # the highlight is styled, not only classed
    assert "<title>Declared vs observed permissions: agent ns1/research-agent</title>" in page
    assert "2017-09-11 19:55:05 UTC → 2017-09-11 20:29:04 UTC" in page
    assert "script" not in parser.tags


def test_html_escapes_names_from_the_cluster() -> None:
    hostile = "x<script>alert(1)</script>"
    objects: list[dict[str, Any]] = [
        cluster_role(hostile, rule(["get"], ["pods"])),
        binding("ClusterRoleBinding", "b&<i>", "ClusterRole", hostile, [sa_subject()]),
    ]
    report = build_report(
        "ns1/sa1",
        RbacInventory.from_objects(objects),
        [audit_event("get", "pods", namespace="ns1", name="p")],
    )
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "b&amp;&lt;i&gt;" in page


def test_posture_section_when_supplied(demo_events: list[dict[str, Any]], overbroad_rbac: RbacInventory) -> None:
    deployments = [
        {
            "metadata": {"name": n, "namespace": "ns1"},
            "spec": {"template": {"spec": {"serviceAccountName": "sa1"}}},
        }
        for n in ("research-agent", "summarizer-agent")
    ]
    posture = assess_service_accounts(deployments)[0]
    report = build_report("ns1:sa1", overbroad_rbac, demo_events, agent="ns1/research-agent", posture=posture)
    assert "shared_service_account" in render_markdown(report)
    assert "ns1/summarizer-agent" in render_html(report)
