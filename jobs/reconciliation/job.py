"""`runward reconcile`: build an agent's reconciliation report from RBAC/IAM (granted) and
audit/CloudTrail (used), keep it in the store for the API and publish it for the ticket."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from jobs.reconciliation.kafka_audit import audit_events_from_kafka
from jobs.reconciliation.loaders import (
    load_audit_events,
    load_cloudtrail,
    load_deployments,
    load_iam_policies,
    load_rbac,
)
from jobs.reconciliation.posture import assess_service_accounts, deployments_from_agents
from jobs.reconciliation.render_html import render_html
from jobs.reconciliation.render_markdown import render_markdown
from jobs.reconciliation.report import build_report
from runward.core.config import Settings
from runward.core.contracts import utcnow
from runward.core.contracts.reconciliation import ReconciliationReport
from runward.core.kafka import DeliveryError, RecordProducer
from runward.core.store import Store
from runward.core.topics import RECONCILIATION


class ReconcileError(ValueError):
    pass


@dataclass
class ReconcileInputs:
    deployment: str
    rbac: list[Path]
    audit: list[Path] = field(default_factory=list)  # empty: every audit event on runward.raw.k8s
    service_account: str | None = None
    iam: list[Path] = field(default_factory=list)
    cloudtrail: list[Path] = field(default_factory=list)
    aws_role_arn: str | None = None
    deployments: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Reconciled:
    """The report and its renderings, made once for the store, the ticket files and the topic."""

    report: ReconciliationReport
    markdown: str
    html: str


def reconcile(inputs: ReconcileInputs, config: Settings, *, publish: bool = True) -> Reconciled:
    for path in [*inputs.rbac, *inputs.audit, *inputs.iam, *inputs.cloudtrail, *inputs.deployments]:
        if not path.exists():
            raise ReconcileError(f"{path}: no such file or directory")
    store = Store(config.db_url)
    namespace = inputs.deployment.partition("/")[0]
    agents = store.agents()
    sa = inputs.service_account or next(
        (a["service_account"] for a in agents if a["deployment"] == inputs.deployment), None
    )
    if not sa:
        raise ReconcileError(
            f"no ServiceAccount known for {inputs.deployment}: pass --service-account or let the pipeline see it"
        )
    apd = store.latest_artifact(inputs.deployment, "apd") or {}
    deployments = load_deployments(*inputs.deployments) if inputs.deployments else deployments_from_agents(agents)
    posture = next((p for p in assess_service_accounts(deployments) if p.deployment == inputs.deployment), None)
    try:
        audit = load_audit_events(*inputs.audit) if inputs.audit else audit_events_from_kafka(config)
    except RuntimeError as exc:
        raise ReconcileError(f"{exc}; or pass --audit with audit log files") from None
    report = build_report(
        f"{namespace}:{sa}",
        load_rbac(*inputs.rbac),
        audit,
        agent=inputs.deployment,
        iam_policies=load_iam_policies(*inputs.iam) if inputs.iam else (),
        cloudtrail_records=load_cloudtrail(*inputs.cloudtrail) if inputs.cloudtrail else (),
        aws_role_arn=inputs.aws_role_arn,
        window_start=_when(apd.get("window_started_at")),
        window_end=_when(apd.get("window_ends_at")),
        posture=posture,
        generated_at=utcnow(),
    )
    revision = max(store.artifact_revisions(inputs.deployment, "reconciliation"), default=0) + 1
    result = Reconciled(report, render_markdown(report), render_html(report))
    body = {
        **report.model_dump(mode="json"),
        "revision": revision,
        "rendered": {"markdown": result.markdown, "html": result.html},
    }
    store.put_artifact(inputs.deployment, "reconciliation", revision, report.generated_at, body)
    if publish:
        producer = RecordProducer(config, "runward-reconcile")
        try:
            producer.publish(RECONCILIATION, inputs.deployment, report, timeout_s=15)
        except DeliveryError as exc:
            raise ReconcileError(f"{exc} (the report is stored; rerun to publish)") from None
        finally:
            producer.close(0)
    return result


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
