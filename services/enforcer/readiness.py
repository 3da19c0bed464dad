"""Go-live readiness of one agent: every check a platform team signs before Enforce.

Pure functions over the artifacts the stages stored (APD, policy bundle, AI-BOM delta,
reconciliation report, ServiceAccount posture, attack stories) plus the acceptance records
people made (waivers and reviews). No I/O: the API and the CLI load the inputs, the promotion
gate asks `gate_reasons` for the checks a promotion to `target` needs.

Each check says pass, fail or waived, with the evidence it judged and the command that fixes
it. A waiver (who, why, until when) turns a failing waivable check into `waived`; a review is
a waiver scoped to one subject (one undeclared dependency), which then no longer fails the
check. Some checks cannot be waived: they are what the gate exists for (an open compromise,
an incomplete observation window, unproven policies, no audit soak).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from runward.core.contracts import ApdRevision, EnforcementMode, WindowStatus


class CheckId(StrEnum):
    AIBOM_REVIEWED = "aibom_reviewed"
    APD_COMPLETE = "apd_complete"
    OBSERVATION_WINDOW = "observation_window"
    SERVICE_ACCOUNT = "service_account"
    RECONCILIATION_REVIEWED = "reconciliation_reviewed"
    NO_OPEN_COMPROMISE = "no_open_compromise"
    POLICIES_PROVEN = "policies_proven"
    AUDIT_SOAK = "audit_soak"
    CURRENT_MODE = "current_mode"


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WAIVED = "waived"


# A waiver may accept a known, owned risk; it may not skip what the gate exists to prove.
WAIVABLE: frozenset[CheckId] = frozenset(
    {CheckId.AIBOM_REVIEWED, CheckId.APD_COMPLETE, CheckId.SERVICE_ACCOUNT, CheckId.RECONCILIATION_REVIEWED}
)

# Checks made of items a person can review one by one (a review names the item as its subject).
REVIEWABLE: frozenset[CheckId] = frozenset({CheckId.AIBOM_REVIEWED})

# The checks a promotion to each mode needs; enforce needs every one.
NEEDED: dict[EnforcementMode, tuple[CheckId, ...]] = {
    EnforcementMode.OBSERVE: (),
    EnforcementMode.AUDIT: (
        CheckId.APD_COMPLETE,
        CheckId.OBSERVATION_WINDOW,
        CheckId.NO_OPEN_COMPROMISE,
    ),
    EnforcementMode.ENFORCE: tuple(CheckId),
}

# BOM delta findings that are not a risk to accept: something declared that was not loaded.
_BENIGN_BOM_FINDINGS = frozenset({"declared_not_loaded"})


@dataclass(frozen=True)
class Acceptance:
    """A waiver (subject None: the whole check) or a review (one subject of the check)."""

    check: CheckId
    actor: str
    reason: str
    created_at: datetime
    until: datetime | None = None
    subject: str | None = None

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True)
class OpenStory:
    story_id: str
    severity: int | None
    last_seen: datetime | None


@dataclass(frozen=True)
class ReadinessInputs:
    deployment: str
    now: datetime
    mode: EnforcementMode
    apd: ApdRevision | None
    bundle: Mapping[str, Any] | None
    bom_delta: Mapping[str, Any] | None
    reconciliation: Mapping[str, Any] | None
    service_account: str | None
    posture_findings: Sequence[str]
    open_stories: Sequence[OpenStory]
    soak_stories: Sequence[OpenStory]
    audit_since: datetime | None
    audit_soak: timedelta
    acceptances: Sequence[Acceptance] = ()
    soak_evidence: Sequence[Mapping[str, Any]] = ()
    """AuditEvidence (JSON) seen since the audit stretch began, newest first (a sample)."""
    soak_evidence_counts: Mapping[str, int] = field(default_factory=dict)
    """Every piece of evidence since the audit stretch began, per source (seccomp, gateway, network)."""


@dataclass(frozen=True)
class Check:
    id: CheckId
    title: str
    status: CheckStatus
    evidence: str
    fix: str | None = None
    waiver: Acceptance | None = None
    # The promotion gate states this same failure itself (e.g. no APD yet): not repeated there.
    gate_states_it: bool = False

    def as_dict(self) -> dict[str, Any]:
        waiver = None
        if self.waiver is not None:
            waiver = {
                "actor": self.waiver.actor,
                "reason": self.waiver.reason,
                "created_at": self.waiver.created_at.isoformat(),
                "until": self.waiver.until.isoformat() if self.waiver.until else None,
            }
        return {
            "id": self.id.value,
            "title": self.title,
            "status": self.status.value,
            "evidence": self.evidence,
            "fix": self.fix,
            "waivable": self.id in WAIVABLE,
            "waiver": waiver,
        }


@dataclass(frozen=True)
class ReadinessReport:
    deployment: str
    target: EnforcementMode
    mode: EnforcementMode
    computed_at: datetime
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def ready(self) -> bool:
        """Ready for `target`: every check that target needs passes or is waived."""
        return not self.blocking

    @property
    def blocking(self) -> list[Check]:
        needed = set(NEEDED[self.target])
        return [c for c in self.checks if c.id in needed and c.status is CheckStatus.FAIL]

    def as_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "target": self.target.value,
            "mode": self.mode.value,
            "computed_at": self.computed_at.isoformat(),
            "ready": self.ready,
            "checks": [c.as_dict() for c in self.checks],
        }


def _cmd(inputs: ReadinessInputs, text: str) -> str:
    return text.replace("NS/NAME", inputs.deployment)


def _waive_cmd(inputs: ReadinessInputs, check: CheckId, subject: str | None = None) -> str:
    about = f" --subject '{subject}'" if subject else ""
    return _cmd(inputs, f"runward waive NS/NAME --check {check.value}{about} --reason '...' --until YYYY-MM-DD")


# --- the checks ------------------------------------------------------------------------------


def _unreviewed_bom_subjects(delta: Mapping[str, Any]) -> list[str]:
    subjects: list[str] = []
    for finding in delta.get("findings") or []:
        if isinstance(finding, Mapping) and finding.get("kind") not in _BENIGN_BOM_FINDINGS:
            subjects.append(f"{finding.get('kind')}:{finding.get('subject')}")
    # Older delta records list bare undeclared subjects.
    subjects.extend(f"undeclared:{s}" for s in delta.get("undeclared") or [] if isinstance(s, str))
    return subjects


def check_aibom(inputs: ReadinessInputs) -> Check:
    title = "AI-BOM delta reviewed"
    if inputs.bom_delta is None:
        return Check(
            CheckId.AIBOM_REVIEWED,
            title,
            CheckStatus.FAIL,
            "no declared-vs-runtime AI-BOM delta is stored: nothing was declared for this agent",
            _cmd(inputs, "runward declare --deployment NS/NAME --manifest deployment.yaml ..."),
        )
    reviewed = {a.subject: a for a in _active(inputs, CheckId.AIBOM_REVIEWED) if a.subject}
    subjects = _unreviewed_bom_subjects(inputs.bom_delta)
    open_subjects = [s for s in subjects if s not in reviewed]
    revision = inputs.bom_delta.get("revision")
    if not open_subjects:
        done = len(subjects)
        return Check(
            CheckId.AIBOM_REVIEWED,
            title,
            CheckStatus.PASS,
            f"AI-BOM delta r{revision}: {done} undeclared or drifted item(s), all reviewed"
            if done
            else f"AI-BOM delta r{revision}: the agent loads only what it declared",
        )
    return Check(
        CheckId.AIBOM_REVIEWED,
        title,
        CheckStatus.FAIL,
        f"AI-BOM delta r{revision}: {len(open_subjects)} unreviewed item(s): {', '.join(sorted(open_subjects))}",
        _cmd(inputs, "declare them (runward declare ...) or review each: ")
        + _waive_cmd(inputs, CheckId.AIBOM_REVIEWED, sorted(open_subjects)[0]),
    )


def check_apd(inputs: ReadinessInputs) -> Check:
    title = "APD complete and not partial"
    apd = inputs.apd
    if apd is None:
        return Check(
            CheckId.APD_COMPLETE,
            title,
            CheckStatus.FAIL,
            "no APD revision is stored: the profiler has not observed this agent",
            "run the agent under observation (runward up / the sensor) until the profiler writes an APD",
            gate_states_it=True,
        )
    if apd.partial:
        return Check(
            CheckId.APD_COMPLETE,
            title,
            CheckStatus.FAIL,
            f"APD revision {apd.revision} is partial: the sensor lost events while learning it",
            "fix the sensor's losses (runward_sensor_* metrics) and let the profiler re-learn, or "
            + _waive_cmd(inputs, CheckId.APD_COMPLETE),
        )
    behaviours = sum(len(v) for v in apd.behaviours.values())
    return Check(
        CheckId.APD_COMPLETE,
        title,
        CheckStatus.PASS,
        f"APD revision {apd.revision}: {behaviours} behaviour(s) in {len(apd.behaviours)} categories, no event loss",
    )


def check_window(inputs: ReadinessInputs) -> Check:
    title = "observation window met for the autonomy tier"
    apd = inputs.apd
    if apd is None:
        return Check(CheckId.OBSERVATION_WINDOW, title, CheckStatus.FAIL, "no APD revision: no window has started")
    window = apd.window_ends_at - apd.window_started_at
    evidence = (
        f"autonomy {apd.autonomy}: window of {_span(window)} from {apd.window_started_at.isoformat()} "
        f"to {apd.window_ends_at.isoformat()}, APD revision {apd.revision} is {apd.window_status.value}"
    )
    if apd.window_status is WindowStatus.COMPLETE and inputs.now >= apd.window_ends_at:
        return Check(CheckId.OBSERVATION_WINDOW, title, CheckStatus.PASS, evidence)
    return Check(
        CheckId.OBSERVATION_WINDOW,
        title,
        CheckStatus.FAIL,
        evidence,
        f"keep observing until {apd.window_ends_at.isoformat()} (the window cannot be waived)",
    )


def check_service_account(inputs: ReadinessInputs) -> Check:
    title = "one ServiceAccount per agent, not default"
    sa = inputs.service_account or "default"
    if not inputs.posture_findings:
        return Check(
            CheckId.SERVICE_ACCOUNT, title, CheckStatus.PASS, f"runs as ServiceAccount {sa}, used by no other agent"
        )
    return Check(
        CheckId.SERVICE_ACCOUNT,
        title,
        CheckStatus.FAIL,
        "; ".join(inputs.posture_findings),
        "give the Deployment its own ServiceAccount (spec.template.spec.serviceAccountName), or "
        + _waive_cmd(inputs, CheckId.SERVICE_ACCOUNT),
    )


def _unused_permissions(report: Mapping[str, Any]) -> int:
    total = 0
    for part in ("kubernetes", "aws"):
        section = report.get(part)
        if isinstance(section, Mapping):
            total += int(section.get("unused_count") or 0)
    unused = report.get("unused")  # the flat shape older reports carried
    if isinstance(unused, list):
        total += len(unused)
    return total


def check_reconciliation(inputs: ReadinessInputs) -> Check:
    title = "reconciliation reviewed (least privilege)"
    report = inputs.reconciliation
    if report is None:
        return Check(
            CheckId.RECONCILIATION_REVIEWED,
            title,
            CheckStatus.FAIL,
            "no reconciliation report is stored: granted-vs-used permissions were never compared",
            _cmd(inputs, "runward reconcile --deployment NS/NAME --rbac rbac/ [--iam ... --cloudtrail ...]"),
        )
    unused = _unused_permissions(report)
    if unused == 0:
        return Check(
            CheckId.RECONCILIATION_REVIEWED,
            title,
            CheckStatus.PASS,
            "every granted permission was used: the grant is already least privilege",
        )
    return Check(
        CheckId.RECONCILIATION_REVIEWED,
        title,
        CheckStatus.FAIL,
        f"{unused} granted permission(s) were never used (see the reconciliation report)",
        "apply the proposed least-privilege Role/IAM policy and re-run `runward reconcile`, or "
        + _waive_cmd(inputs, CheckId.RECONCILIATION_REVIEWED),
    )


def check_stories(inputs: ReadinessInputs) -> Check:
    title = "no unresolved potential-compromise story"
    if not inputs.open_stories:
        return Check(CheckId.NO_OPEN_COMPROMISE, title, CheckStatus.PASS, "no open potential-compromise story")
    ids = ", ".join(s.story_id for s in inputs.open_stories)
    return Check(
        CheckId.NO_OPEN_COMPROMISE,
        title,
        CheckStatus.FAIL,
        f"{len(inputs.open_stories)} open potential-compromise story(ies): {ids}",
        "investigate and resolve each story (GET /v1/attack-stories/ID); an open compromise cannot be waived",
    )


def _proof_ok(proof: Any) -> bool:
    """A stored bundle's proof (a PolicyProof as JSON) passed; anything else is no proof."""
    return isinstance(proof, Mapping) and proof.get("passed") is True


def check_policies(inputs: ReadinessInputs) -> Check:
    title = "policies proven"
    bundle = inputs.bundle
    if bundle is None:
        return Check(
            CheckId.POLICIES_PROVEN,
            title,
            CheckStatus.FAIL,
            "no policy bundle is stored yet",
            "wait for the enforcer to derive policies from the complete APD",
        )
    # A bundle without a proof has not been proven: read it defensively, never assume.
    proof = bundle.get("proof")
    revision = bundle.get("revision")
    if _proof_ok(proof):
        summary = proof.get("summary") if isinstance(proof, Mapping) else None
        return Check(
            CheckId.POLICIES_PROVEN,
            title,
            CheckStatus.PASS,
            f"policy bundle r{revision} carries a passing proof" + (f": {summary}" if summary else ""),
        )
    why = "carries no proof" if proof is None else "carries a proof that did not pass"
    return Check(
        CheckId.POLICIES_PROVEN,
        title,
        CheckStatus.FAIL,
        f"policy bundle r{revision} {why}: the seccomp profile and egress allowlist were not run against "
        "the agent's recorded workload",
        _cmd(inputs, "runward prove NS/NAME (it cannot be waived)"),
    )


def check_soak(inputs: ReadinessInputs) -> Check:
    title = f"audit soak clean for {_span(inputs.audit_soak)}"
    if inputs.mode is EnforcementMode.ENFORCE:
        # The gate held the soak on the way in; an enforced agent is judged by its stories now.
        return Check(CheckId.AUDIT_SOAK, title, CheckStatus.PASS, "the agent is already in enforce")
    if inputs.mode is EnforcementMode.OBSERVE or inputs.audit_since is None:
        return Check(
            CheckId.AUDIT_SOAK,
            title,
            CheckStatus.FAIL,
            f"the agent is in {inputs.mode.value}: no audit soak has started",
            _cmd(inputs, "runward promote NS/NAME --to audit --reason '...'"),
        )
    soaked = inputs.now - inputs.audit_since
    if inputs.soak_stories:
        ids = ", ".join(s.story_id for s in inputs.soak_stories)
        return Check(
            CheckId.AUDIT_SOAK,
            title,
            CheckStatus.FAIL,
            f"in audit since {inputs.audit_since.isoformat()}; potential-compromise story(ies) seen during "
            f"the soak: {ids}",
            "resolve the stories, then step back and restart the soak: "
            + _cmd(inputs, "runward promote NS/NAME --to audit --reason '...'"),
        )
    soak_evidence = _soak_evidence(inputs)
    if soak_evidence is not None:
        return soak_evidence
    if soaked < inputs.audit_soak:
        return Check(
            CheckId.AUDIT_SOAK,
            title,
            CheckStatus.FAIL,
            f"in audit since {inputs.audit_since.isoformat()}: {_span(soaked)} of {_span(inputs.audit_soak)} soaked",
            f"keep the agent in audit until {(inputs.audit_since + inputs.audit_soak).isoformat()} "
            "(RUNWARD_AUDIT_SOAK_S sets the soak; it cannot be waived)",
        )
    return Check(
        CheckId.AUDIT_SOAK,
        title,
        CheckStatus.PASS,
        f"in audit since {inputs.audit_since.isoformat()} ({_span(soaked)}), no potential compromise and no "
        "would-be violation during the soak",
    )


def _soak_evidence(inputs: ReadinessInputs) -> Check | None:
    """Audit mode's product: what the enforce-mode policies would have refused. Any of it during
    the soak means enforce would break the agent (or stop an attack): the soak is not clean."""
    total = sum(inputs.soak_evidence_counts.values()) or len(inputs.soak_evidence)
    if not total or inputs.audit_since is None:
        return None
    per_source = ", ".join(f"{source} {n}" for source, n in sorted(inputs.soak_evidence_counts.items()))
    actions = sorted({str(e.get("action")) for e in inputs.soak_evidence})[:5]
    return Check(
        CheckId.AUDIT_SOAK,
        f"audit soak clean for {_span(inputs.audit_soak)}",
        CheckStatus.FAIL,
        f"in audit since {inputs.audit_since.isoformat()}: {total} would-be violation(s) during the soak"
        + (f" ({per_source})" if per_source else "")
        + (f", e.g. {', '.join(actions)}" if actions else ""),
        "review them (GET /v1/agents/NS/NAME/audit-evidence), accept what is legitimate into the APD or fix the "
        "agent, then restart the soak: ".replace("NS/NAME", inputs.deployment)
        + _cmd(inputs, "runward promote NS/NAME --to audit --reason '...'"),
    )


def check_mode(inputs: ReadinessInputs) -> Check:
    title = "current mode"
    evidence = f"the agent is in {inputs.mode.value}"
    if inputs.mode is EnforcementMode.OBSERVE:
        return Check(
            CheckId.CURRENT_MODE,
            title,
            CheckStatus.FAIL,
            evidence + ": enforce needs audit first",
            _cmd(inputs, "runward promote NS/NAME --to audit --reason '...'"),
        )
    return Check(CheckId.CURRENT_MODE, title, CheckStatus.PASS, evidence)


CHECKS = (
    check_aibom,
    check_apd,
    check_window,
    check_service_account,
    check_reconciliation,
    check_stories,
    check_policies,
    check_soak,
    check_mode,
)


def _active(inputs: ReadinessInputs, check: CheckId) -> list[Acceptance]:
    return [a for a in inputs.acceptances if a.check is check and a.active(inputs.now)]


def _apply_waiver(inputs: ReadinessInputs, check: Check) -> Check:
    if check.status is not CheckStatus.FAIL or check.id not in WAIVABLE:
        return check
    whole = [a for a in _active(inputs, check.id) if a.subject is None]
    if not whole:
        return check
    waiver = max(whole, key=lambda a: a.created_at)
    until = f" until {waiver.until.isoformat()}" if waiver.until else ""
    return Check(
        check.id,
        check.title,
        CheckStatus.WAIVED,
        f"{check.evidence} — waived by {waiver.actor}{until}: {waiver.reason}",
        check.fix,
        waiver,
    )


def assess(inputs: ReadinessInputs, target: EnforcementMode = EnforcementMode.ENFORCE) -> ReadinessReport:
    """Every readiness check of one agent for a promotion to `target` (go-live: enforce)."""
    checks = tuple(_apply_waiver(inputs, check(inputs)) for check in CHECKS)
    return ReadinessReport(
        deployment=inputs.deployment, target=target, mode=inputs.mode, computed_at=inputs.now, checks=checks
    )


def acceptances_from_rows(rows: Sequence[Mapping[str, Any]]) -> list[Acceptance]:
    """Waiver rows as the store gives them (`runward.core.store.history.waivers`) -> acceptances."""
    found = []
    for row in rows:
        try:
            check = CheckId(row["check"])
        except ValueError:
            continue  # a check this version no longer has accepts nothing
        found.append(
            Acceptance(
                check=check,
                actor=row["actor"],
                reason=row["reason"],
                created_at=row["created_at"],
                until=row.get("until"),
                subject=row.get("subject"),
            )
        )
    return found


def inputs_from_rows(
    *,
    agent: Mapping[str, Any],
    now: datetime,
    mode: EnforcementMode,
    apd: ApdRevision | None,
    bundles: Sequence[Mapping[str, Any]],
    bom_delta: Mapping[str, Any] | None,
    reconciliation: Mapping[str, Any] | None,
    posture_findings: Sequence[str],
    open_stories: Sequence[OpenStory],
    compromise_stories: Sequence[OpenStory],
    waivers: Sequence[Mapping[str, Any]],
    audit_soak: timedelta,
    evidence: Sequence[Mapping[str, Any]] = (),
    evidence_counts: Mapping[str, int] | None = None,
) -> ReadinessInputs:
    """The inputs of `assess` from what the store holds: every reader (the API, the enforcer)
    assembles them the same way. `compromise_stories` are every 'potential compromise' story of
    the agent; those seen since the audit stretch began spoil the soak, as does audit evidence
    (`evidence`, newest first, and `evidence_counts` per source, both read since `audit_since`)."""
    ordered = sorted(bundles, key=lambda b: int(b.get("revision") or 0))
    since = audit_since(ordered)
    soak_stories = (
        [s for s in compromise_stories if s.last_seen is not None and s.last_seen >= since] if since is not None else []
    )
    return ReadinessInputs(
        deployment=str(agent["deployment"]),
        now=now,
        mode=mode,
        apd=apd,
        bundle=ordered[-1] if ordered else None,
        bom_delta=bom_delta,
        reconciliation=reconciliation,
        service_account=agent.get("service_account"),
        posture_findings=posture_findings,
        open_stories=open_stories,
        soak_stories=soak_stories,
        audit_since=since,
        audit_soak=audit_soak,
        acceptances=acceptances_from_rows(waivers),
        soak_evidence=[e for e in evidence if since is not None and (_parse_ts(e.get("ts")) or since) >= since],
        soak_evidence_counts=dict(evidence_counts or {}) if since is not None else {},
    )


def gate_reasons(report: ReadinessReport | None, target: EnforcementMode, current: EnforcementMode) -> list[str]:
    """The readiness reasons a promotion from `current` to `target` is refused (the gate's hook).

    Stepping back is never held. `report` None means readiness was not computed: going up is
    refused rather than allowed, since nothing fails open.
    """
    if NEEDED[target] == () or _rank(target) <= _rank(current):
        return []
    if report is None:
        return [f"readiness of the agent for {target.value} was not assessed; the gate does not promote blind"]
    needed = set(NEEDED[target]) - GATE_OWNED
    return [
        f"readiness check {c.id.value} fails: {c.evidence}"
        for c in report.checks
        if c.id in needed and c.status is CheckStatus.FAIL and not c.gate_states_it
    ]


# Rules promotion_gate.evaluate already owns (each domain rule has one owner): not repeated.
# Policies proven is rule 6 of the gate (a passing proof of the latest APD revision's profile).
GATE_OWNED = frozenset(
    {CheckId.OBSERVATION_WINDOW, CheckId.NO_OPEN_COMPROMISE, CheckId.CURRENT_MODE, CheckId.POLICIES_PROVEN}
)

_RANK = {EnforcementMode.OBSERVE: 0, EnforcementMode.AUDIT: 1, EnforcementMode.ENFORCE: 2}


def _rank(mode: EnforcementMode) -> int:
    return _RANK[mode]


def audit_since(bundles: Sequence[Mapping[str, Any]]) -> datetime | None:
    """When the agent's current stretch in audit began, from its policy bundles (any order).

    None when the latest bundle is not in audit. The enforcer writes a bundle per APD revision,
    so the stretch starts at the first audit bundle after the last non-audit one.
    """
    ordered = sorted(bundles, key=lambda b: int(b.get("revision") or 0))
    start: datetime | None = None
    for bundle in ordered:
        if bundle.get("mode") == EnforcementMode.AUDIT.value:
            if start is None:
                start = _parse_ts(bundle.get("created_at"))
        else:
            start = None
    return start


def _parse_ts(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return None


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400 and seconds % 3600 == 0:
        return f"{seconds / 86400:g} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds} s"


def render_markdown(report: ReadinessReport) -> str:
    """The report to attach to the deployment ticket."""
    verdict = "READY" if report.ready else "NOT READY"
    lines = [
        f"# Go-live readiness: {report.deployment}",
        "",
        f"**{verdict}** for {report.target.value} (current mode: {report.mode.value}; "
        f"computed {report.computed_at.isoformat()})",
        "",
        "| check | status | evidence | fix |",
        "|---|---|---|---|",
    ]
    for c in report.checks:
        lines.append(f"| {c.title} | {c.status.value} | {_md(c.evidence)} | {_md(c.fix or '')} |")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_html(report: ReadinessReport) -> str:
    from html import escape

    verdict = "READY" if report.ready else "NOT READY"
    rows = "".join(
        f'<tr class="{c.status.value}"><td>{escape(c.title)}</td><td>{c.status.value}</td>'
        f"<td>{escape(c.evidence)}</td><td><code>{escape(c.fix or '')}</code></td></tr>"
        for c in report.checks
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>Go-live readiness {escape(report.deployment)}</title>"
        "<style>td{border:1px solid #ccc;padding:4px}.fail{background:#fdd}.pass{background:#dfd}"
        ".waived{background:#ffd}</style></head><body>"
        f"<h1>Go-live readiness: {escape(report.deployment)}</h1>"
        f"<p><strong>{verdict}</strong> for {report.target.value} (current mode {report.mode.value}; "
        f"computed {escape(report.computed_at.isoformat())})</p>"
        f"<table><tr><th>check</th><th>status</th><th>evidence</th><th>fix</th></tr>{rows}</table>"
        "</body></html>"
    )
