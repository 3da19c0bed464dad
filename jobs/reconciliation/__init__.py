"""Declared-vs-observed reconciliation (Pillar 2): RBAC/IAM granted vs what the agent used.

Typical use::

    inventory = load_rbac("rbac/")
    report = build_report("ns1:sa1", inventory, load_audit_events("audit.log"), agent="ns1/agent")
    render_markdown(report)
"""

from jobs.reconciliation.iam import IamPolicy, parse_policy
from jobs.reconciliation.loaders import (
    load_audit_events,
    load_cloudtrail,
    load_deployments,
    load_iam_policies,
    load_rbac,
    load_yaml_documents,
)
from jobs.reconciliation.posture import assess_service_accounts, service_account_of
from jobs.reconciliation.proposal import ProposalOptions, propose_rbac
from jobs.reconciliation.rbac import Identity, RbacInventory, granted_permissions
from jobs.reconciliation.render import render_json
from jobs.reconciliation.render_html import render_html
from jobs.reconciliation.render_markdown import render_markdown
from jobs.reconciliation.report import build_report, reconcile_aws, reconcile_kubernetes
from runward.core.contracts.reconciliation import (
    AgentPosture,
    IamReconciliation,
    K8sPermission,
    K8sReconciliation,
    K8sRequest,
    PostureFinding,
    ReconciliationReport,
    ServiceAccountRef,
)

__all__ = [
    "AgentPosture",
    "IamPolicy",
    "IamReconciliation",
    "Identity",
    "K8sPermission",
    "K8sReconciliation",
    "K8sRequest",
    "PostureFinding",
    "ProposalOptions",
    "RbacInventory",
    "ReconciliationReport",
    "ServiceAccountRef",
    "assess_service_accounts",
    "build_report",
    "granted_permissions",
    "load_audit_events",
    "load_cloudtrail",
    "load_deployments",
    "load_iam_policies",
    "load_rbac",
    "load_yaml_documents",
    "parse_policy",
    "propose_rbac",
    "reconcile_aws",
    "reconcile_kubernetes",
    "render_html",
    "render_json",
    "render_markdown",
    "service_account_of",
]
