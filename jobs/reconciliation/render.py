"""What both human renderers show, computed once so Markdown and HTML cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import yaml

from runward.core.contracts.reconciliation import (
    IamPermissionUsage,
    IamReconciliation,
    K8sReconciliation,
    ReconciliationReport,
)

UNUSED = "UNUSED"
USED = "used"


def render_json(report: ReconciliationReport, indent: int | None = 2) -> str:
    return report.model_dump_json(indent=indent)


@dataclass(frozen=True)
class Row:
    used: bool
    wildcard: bool
    permission: str
    scope: str
    granted_by: str
    used_by: str


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value else "unknown"


def title(report: ReconciliationReport) -> str:
    who = f"agent {report.agent}" if report.agent else f"ServiceAccount {report.service_account}"
    return f"Declared vs observed permissions: {who}"


def window(report: ReconciliationReport) -> str:
    return f"{fmt_time(report.window_start)} → {fmt_time(report.window_end)}"


def headline(granted: int, used: int) -> str:
    return f"granted {granted}, used {used}"


def unused_share(granted: int, unused: int) -> str:
    return f"{round(100 * unused / granted)}%" if granted else "n/a"


def k8s_rows(k8s: K8sReconciliation) -> list[Row]:
    return [
        Row(
            used=u.used,
            wildcard=u.wildcard,
            permission=u.permission.rule_text,
            scope="cluster-wide" if u.permission.namespace is None else u.permission.namespace,
            granted_by="; ".join(s.label for s in u.sources),
            used_by=", ".join(r.label for r in u.used_by),
        )
        for u in k8s.permissions
    ]


def _iam_scope(u: IamPermissionUsage) -> str:
    resource = f"NOT {u.permission.resource}" if u.permission.not_resource else u.permission.resource
    return resource + (" (conditional)" if any(s.conditional for s in u.sources) else "")


def iam_rows(aws: IamReconciliation) -> list[Row]:
    return [
        Row(
            used=u.used,
            wildcard=u.wildcard,
            permission=f"NOT {u.permission.action}" if u.permission.not_action else u.permission.action,
            scope=_iam_scope(u),
            granted_by="; ".join(f"{s.policy}" + (f"#{s.sid}" if s.sid else "") for s in u.sources),
            used_by=", ".join(sorted({c.action for c in u.used_by})),
        )
        for u in aws.permissions
    ]


def proposal_yaml(k8s: K8sReconciliation) -> str:
    if not k8s.proposed_rbac:
        return "# nothing observed: the agent needs no RBAC permission\n"
    return yaml.safe_dump_all(k8s.proposed_rbac, sort_keys=False, default_flow_style=False)
