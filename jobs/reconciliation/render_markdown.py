"""Markdown rendering, for pasting into a deployment ticket (GitHub/Jira markdown)."""

from __future__ import annotations

import json

from jobs.reconciliation.render import (
    UNUSED,
    USED,
    Row,
    fmt_time,
    headline,
    iam_rows,
    k8s_rows,
    proposal_yaml,
    title,
    unused_share,
    window,
)
from runward.core.contracts.reconciliation import IamReconciliation, K8sReconciliation, ReconciliationReport


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "—"


def _permission_table(rows: list[Row], scope_header: str) -> list[str]:
    lines = [
        f"| status | permission | {scope_header} | granted by | used by |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        status = USED if row.used else f"**{UNUSED}**"
        wildcard = " (wildcard)" if row.wildcard else ""
        permission = f"`{_cell(row.permission)}`{wildcard}"
        if not row.used:
            permission = f"**{permission}**"
        cells = [status, permission, _cell(row.scope), _cell(row.granted_by), _cell(row.used_by)]
        lines.append(f"| {' | '.join(cells)} |")
    return lines


def _k8s_section(k8s: K8sReconciliation) -> list[str]:
    out = ["## Kubernetes RBAC", ""]
    out += _permission_table(k8s_rows(k8s), "scope")
    out += ["", f"### Denied attempts ({sum(d.count for d in k8s.denied_attempts)})", ""]
    if k8s.denied_attempts:
        out += ["| request | count | status | granted now? | audit IDs |", "|---|---|---|---|---|"]
        for d in k8s.denied_attempts:
            codes = ", ".join(str(c) for c in d.status_codes)
            now = "yes" if d.covered_by_current_grant else "**no**"
            cells = [f"`{_cell(d.request.label)}`", str(d.count), codes, now, _cell(", ".join(d.audit_ids))]
            out.append(f"| {' | '.join(cells)} |")
    else:
        out.append("None.")
    if k8s.outside_grants:
        out += ["", "### Successful requests outside the supplied grants", ""]
        out += [f"- `{_cell(o.request.label)}` × {o.count}" for o in k8s.outside_grants]
    out += ["", "### Proposed least-privilege RBAC", "", "```yaml", proposal_yaml(k8s).rstrip(), "```", ""]
    return out


def _aws_section(aws: IamReconciliation) -> list[str]:
    out = [f"## AWS IAM (`{aws.role_arn}`)", ""]
    out += _permission_table(iam_rows(aws), "resource")
    if aws.explicit_denies:
        out += ["", "Explicit denies: " + ", ".join(f"`{_cell(p.label)}`" for p in aws.explicit_denies)]
    out += ["", f"### Denied attempts ({sum(d.count for d in aws.denied_attempts)})", ""]
    if aws.denied_attempts:
        out += ["| action | resources | count | error | granted now? |", "|---|---|---|---|---|"]
        for d in aws.denied_attempts:
            now = "yes" if d.covered_by_current_grant else "**no**"
            resources = ", ".join(d.call.resources) or "unknown"
            errors = _cell(", ".join(d.error_codes))
            cells = [f"`{d.call.action}`", _cell(resources), str(d.count), errors, now]
            out.append(f"| {' | '.join(cells)} |")
    else:
        out.append("None.")
    policy = json.dumps(aws.proposed_policy, indent=2)
    out += ["", "### Proposed least-privilege IAM policy", "", "```json", policy, "```", ""]
    return out


def render_markdown(report: ReconciliationReport) -> str:
    k8s = report.kubernetes
    lines = [
        f"# {title(report)}",
        "",
        f"- ServiceAccount: `{report.service_account}`",
        f"- Observation window: {window(report)}",
        f"- Generated: {fmt_time(report.generated_at)}",
        "",
        f"**Kubernetes RBAC: {headline(k8s.granted_count, k8s.used_count)}** — "
        f"**{k8s.unused_count} unused ({unused_share(k8s.granted_count, k8s.unused_count)})**, "
        f"{sum(d.count for d in k8s.denied_attempts)} denied attempt(s)",
    ]
    if report.aws is not None:
        aws = report.aws
        lines += [
            "",
            f"**AWS IAM: {headline(aws.granted_count, aws.used_count)}** — "
            f"**{aws.unused_count} unused ({unused_share(aws.granted_count, aws.unused_count)})**, "
            f"{sum(d.count for d in aws.denied_attempts)} denied attempt(s)",
        ]
    lines.append("")
    if report.posture is not None:
        lines += ["## ServiceAccount posture", ""]
        if report.posture.findings:
            lines += [f"- **{f.severity}** {f.code}: {_cell(f.message)}" for f in report.posture.findings]
        else:
            lines.append("- dedicated, non-default ServiceAccount")
        lines.append("")
    lines += _k8s_section(k8s)
    if report.aws is not None:
        lines += _aws_section(report.aws)
    if report.notes:
        lines += ["## Notes", ""] + [f"- {_cell(n)}" for n in report.notes] + [""]
    return "\n".join(lines)
