"""Posture: `runward reconcile`, granted (RBAC/IAM) vs used (audit/CloudTrail) for one agent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from runward.control.cli.common import DbOpt, Failure, KafkaOpt, open_store, out, settings


def reconcile(
    deployment: Annotated[str, typer.Option(metavar="NS/NAME", help="the agent, namespace/name")],
    rbac: Annotated[list[Path], typer.Option(metavar="PATH", help="RBAC manifests (file or directory; repeat)")],
    audit: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="PATH",
            help="audit.k8s.io/v1 log (file or dir; repeat); default: every audit event on runward.raw.k8s",
        ),
    ] = None,
    service_account: Annotated[
        str | None, typer.Option(metavar="SA", help="defaults to the one the pipeline saw the agent run as")
    ] = None,
    iam: Annotated[
        list[Path] | None, typer.Option(metavar="PATH", help="AWS IAM policy documents attached to the agent's role")
    ] = None,
    cloudtrail: Annotated[list[Path] | None, typer.Option(metavar="PATH", help="CloudTrail logs (Records[])")] = None,
    aws_role_arn: Annotated[
        str | None, typer.Option(metavar="ARN", help="the agent's IAM role, to pick its CloudTrail calls")
    ] = None,
    deployments: Annotated[
        list[Path] | None, typer.Option(metavar="PATH", help="Deployment manifests, for ServiceAccount posture")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="also write JSON, Markdown and HTML here (to attach to the ticket)"),
    ] = None,
    no_publish: Annotated[bool, typer.Option("--no-publish", help="store only, do not publish to Kafka")] = False,
    kafka: KafkaOpt = None,
    db: DbOpt = None,
) -> int:
    """Granted (RBAC/IAM) vs used (audit/CloudTrail) report for an agent."""
    from jobs.reconciliation.job import ReconcileError, ReconcileInputs, reconcile
    from runward.control.broker import BrokerError, require_kafka
    from runward.core.store import SchemaOutOfDate

    config = settings(kafka, db)
    open_store(config.db_url)  # one line naming the URL when there is no store yet
    if not no_publish or not audit:  # it publishes the report, or reads audit events from Kafka
        try:
            require_kafka(config.kafka)
        except BrokerError as exc:
            raise Failure(f"{exc} (or pass --audit files and --no-publish)") from None
    inputs = ReconcileInputs(
        deployment=deployment,
        rbac=rbac,
        audit=audit or [],
        service_account=service_account,
        iam=iam or [],
        cloudtrail=cloudtrail or [],
        aws_role_arn=aws_role_arn,
        deployments=deployments or [],
    )
    try:
        result = reconcile(inputs, config, publish=not no_publish)
    except (ReconcileError, SchemaOutOfDate) as exc:
        raise Failure(str(exc), code=2) from None
    k8s = result.report.kubernetes
    out.print(
        f"{deployment}: Kubernetes RBAC granted {k8s.granted_count}, used {k8s.used_count}, unused {k8s.unused_count}",
        soft_wrap=True,
    )
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = deployment.replace("/", "_")
        (out_dir / f"{stem}.reconciliation.json").write_text(result.report.model_dump_json(indent=2))
        (out_dir / f"{stem}.reconciliation.md").write_text(result.markdown)
        (out_dir / f"{stem}.reconciliation.html").write_text(result.html)
        out.print(f"report written to {out_dir}/{stem}.reconciliation.{{json,md,html}}", soft_wrap=True, markup=False)
    return 0


def register(app: typer.Typer) -> None:
    app.command(help="granted (RBAC/IAM) vs used (audit/CloudTrail) report for an agent")(reconcile)
