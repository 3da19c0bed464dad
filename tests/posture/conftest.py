from __future__ import annotations

from typing import Any

import pytest

from jobs.reconciliation import (
    RbacInventory,
    ReconciliationReport,
    build_report,
    load_audit_events,
    load_cloudtrail,
    load_iam_policies,
    load_rbac,
)
from tests.posture.factories import DATA

AGENT_ROLE = "arn:aws:iam::111122223333:role/agents/research-agent"


@pytest.fixture(scope="session")
def demo_events() -> list[dict[str, Any]]:
    """The 37 real audit events of liggitt/audit2rbac testdata/demo.log."""
    return load_audit_events(DATA / "audit2rbac_demo.log")


@pytest.fixture(scope="session")
def overbroad_rbac() -> RbacInventory:
    return load_rbac(DATA / "rbac_sa1_overbroad.yaml")


@pytest.fixture(scope="session")
def full_report(demo_events: list[dict[str, Any]], overbroad_rbac: RbacInventory) -> ReconciliationReport:
    return build_report(
        "ns1:sa1",
        overbroad_rbac,
        demo_events,
        agent="ns1/research-agent",
        iam_policies=load_iam_policies(DATA / "iam_agent_policy.json"),
        cloudtrail_records=load_cloudtrail(DATA / "cloudtrail_agent_synthetic.json"),
        aws_role_arn=AGENT_ROLE,
    )
