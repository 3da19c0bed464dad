"""Self-contained HTML rendering (inline CSS, no scripts) to attach to a deployment ticket.

Every piece of report text goes through html.escape: names in RBAC manifests and ARNs
come from the cluster and the cloud account, not from us.
"""

from __future__ import annotations

import json
from html import escape

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

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #1b1b1b; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; font-size: 0.9em; }
th { background: #f0f0f0; }
tr.unused { background: #fde2e1; }
tr.unused td.status { color: #b00020; font-weight: bold; }
tr.used td.status { color: #1b5e20; }
.headline { font-size: 1.3em; font-weight: bold; }
.delta { color: #b00020; }
.wildcard { background: #fff3cd; padding: 0 4px; border-radius: 3px; font-size: 0.8em; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; }
code { font-family: ui-monospace, monospace; }
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _summary(label: str, granted: int, used: int, unused: int, denied: int) -> str:
    return (
        f'<p class="headline">{_e(label)}: <span class="counts">{_e(headline(granted, used))}</span> '
        f'— <span class="delta">{unused} unused ({_e(unused_share(granted, unused))})</span>, '
        f"{denied} denied attempt(s)</p>"
    )


def _permission_table(rows: list[Row], scope_header: str) -> str:
    body = []
    for row in rows:
        cls = "used" if row.used else "unused"
        wildcard = ' <span class="wildcard">wildcard</span>' if row.wildcard else ""
        body.append(
            f'<tr class="{cls}"><td class="status">{USED if row.used else UNUSED}</td>'
            f"<td><code>{_e(row.permission)}</code>{wildcard}</td><td>{_e(row.scope)}</td>"
            f"<td>{_e(row.granted_by)}</td><td>{_e(row.used_by) or '—'}</td></tr>"
        )
    return (
        f"<table><thead><tr><th>status</th><th>permission</th><th>{_e(scope_header)}</th>"
        f"<th>granted by</th><th>used by</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _k8s_section(k8s: K8sReconciliation) -> str:
    parts = ["<h2>Kubernetes RBAC</h2>", _permission_table(k8s_rows(k8s), "scope")]
    parts.append(f"<h3>Denied attempts ({sum(d.count for d in k8s.denied_attempts)})</h3>")
    if k8s.denied_attempts:
        rows = "".join(
            f'<tr class="denied"><td><code>{_e(d.request.label)}</code></td><td>{d.count}</td>'
            f"<td>{_e(', '.join(str(c) for c in d.status_codes))}</td>"
            f"<td>{'yes' if d.covered_by_current_grant else '<strong>no</strong>'}</td>"
            f"<td>{_e(', '.join(d.audit_ids))}</td></tr>"
            for d in k8s.denied_attempts
        )
        parts.append(
            "<table><thead><tr><th>request</th><th>count</th><th>status</th><th>granted now?</th>"
            f"<th>audit IDs</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    else:
        parts.append("<p>None.</p>")
    if k8s.outside_grants:
        items = "".join(f"<li><code>{_e(o.request.label)}</code> × {o.count}</li>" for o in k8s.outside_grants)
        parts.append(f"<h3>Successful requests outside the supplied grants</h3><ul>{items}</ul>")
    parts.append("<h3>Proposed least-privilege RBAC</h3>")
    parts.append(f'<pre class="proposal">{_e(proposal_yaml(k8s))}</pre>')
    return "".join(parts)


def _aws_section(aws: IamReconciliation) -> str:
    parts = [
        f"<h2>AWS IAM (<code>{_e(aws.role_arn)}</code>)</h2>",
        _permission_table(iam_rows(aws), "resource"),
    ]
    if aws.explicit_denies:
        denies = ", ".join(f"<code>{_e(p.label)}</code>" for p in aws.explicit_denies)
        parts.append(f"<p>Explicit denies: {denies}</p>")
    parts.append(f"<h3>Denied attempts ({sum(d.count for d in aws.denied_attempts)})</h3>")
    if aws.denied_attempts:
        rows = "".join(
            f'<tr class="denied"><td><code>{_e(d.call.action)}</code></td>'
            f"<td>{_e(', '.join(d.call.resources) or 'unknown')}</td><td>{d.count}</td>"
            f"<td>{_e(', '.join(d.error_codes))}</td>"
            f"<td>{'yes' if d.covered_by_current_grant else '<strong>no</strong>'}</td></tr>"
            for d in aws.denied_attempts
        )
        parts.append(
            "<table><thead><tr><th>action</th><th>resources</th><th>count</th><th>error</th>"
            f"<th>granted now?</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    else:
        parts.append("<p>None.</p>")
    policy = json.dumps(aws.proposed_policy, indent=2)
    parts.append(f'<h3>Proposed least-privilege IAM policy</h3><pre class="proposal">{_e(policy)}</pre>')
    return "".join(parts)


def render_html(report: ReconciliationReport) -> str:
    k8s = report.kubernetes
    denied = sum(d.count for d in k8s.denied_attempts)
    body = [
        f"<h1>{_e(title(report))}</h1>",
        "<ul>",
        f"<li>ServiceAccount: <code>{_e(report.service_account)}</code></li>",
        f"<li>Observation window: {_e(window(report))}</li>",
        f"<li>Generated: {_e(fmt_time(report.generated_at))}</li>",
        "</ul>",
        _summary("Kubernetes RBAC", k8s.granted_count, k8s.used_count, k8s.unused_count, denied),
    ]
    if report.aws is not None:
        aws = report.aws
        aws_denied = sum(d.count for d in aws.denied_attempts)
        body.append(_summary("AWS IAM", aws.granted_count, aws.used_count, aws.unused_count, aws_denied))
    if report.posture is not None:
        items = "".join(
            f"<li><strong>{_e(f.severity)}</strong> {_e(f.code)}: {_e(f.message)}</li>" for f in report.posture.findings
        )
        items = items or "<li>dedicated, non-default ServiceAccount</li>"
        body.append(f"<h2>ServiceAccount posture</h2><ul>{items}</ul>")
    body.append(_k8s_section(k8s))
    if report.aws is not None:
        body.append(_aws_section(report.aws))
    if report.notes:
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title(report))}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
