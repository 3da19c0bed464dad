"""Records that stages write for each other: enriched events, APD revisions,
signals, attack stories, AI-BOMs and policy bundles."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from runward.core.contracts.behaviours import BehaviourKey
from runward.core.contracts.common import DeploymentId, Record
from runward.core.contracts.details import Autonomy, EventDetail
from runward.core.contracts.enforcement import ArgumentRule, BundleToolPolicy, PolicyProof
from runward.core.contracts.revision import PodTemplateRevision


class Surface(StrEnum):
    """The four detection surfaces of the brief, plus the host behaviours the sensor sees."""

    INPUT = "input"
    TOOL = "tool"
    IDENTITY = "identity"
    MULTI_AGENT = "multi_agent"
    PROCESS = "process"
    FILE = "file"
    NETWORK = "network"
    DEPLOYMENT = "deployment"


class SourceRef(BaseModel):
    """Where a record came from, so any artifact can be traced back to raw input."""

    model_config = ConfigDict(extra="forbid")

    topic: str
    partition: int
    offset: int


class EnrichedEvent(Record):
    """A validated, attributed event, keyed by its agent's Deployment id.

    `behaviour` is what the profiler folds into the APD (typed; on the wire its key, e.g.
    `egress:api.openai.com:443/tcp`); `detail` is the variant of the event's `kind`. A
    producer may give either `kind` or a typed `detail`: the other is filled in, and a
    disagreement between them, or between `behaviour` and `category`, is rejected.
    """

    event_id: str
    ts: datetime
    deployment: DeploymentId
    namespace: str
    pod: str | None = None
    service_account: str | None = None
    revision: str | None = Field(
        default=None, description="template hash of the Deployment revision the pod runs, when known"
    )
    surface: Surface
    kind: str
    behaviour: BehaviourKey | None = Field(
        default=None, description="APD key; None for events that are not behaviour (e.g. deployment_change)"
    )
    category: str | None = Field(default=None, description="APD category the behaviour belongs to")
    detail: EventDetail
    flags: list[str] = Field(default_factory=list, description="enrichment findings, e.g. prompt_injection:<rule>")
    partial: bool = Field(default=False, description="the sensor lost events for this container")
    source: SourceRef
    # Event time comes from the sender and is evidence, not authority: ingest stamps when it took the
    # record, and a `ts` further than the allowed clock skew from it is replaced by it (flag
    # `clock_skew`, the sender's time kept in `claimed_ts`), so a backdated event cannot pose as old.
    received_at: datetime | None = Field(default=None, description="when ingest received the raw record")
    claimed_ts: datetime | None = Field(
        default=None, description="the sender's event time when it was outside the allowed clock skew"
    )

    @field_validator("ts", "received_at", "claimed_ts")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        # A zone-less time cannot be compared with the profiler's zoned ones: one would break
        # the agent's fold for good, so it is refused (dead-lettered) at decode.
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"{value.isoformat()} has no time zone; event times are RFC 3339 with an offset")
        return value

    @model_validator(mode="before")
    @classmethod
    def _kind_in_detail(cls, data: Any) -> Any:
        # The wire carries `kind` once at the top (schema 1 had an untyped detail without it):
        # the detail variant is chosen by the event's kind.
        if not isinstance(data, dict):
            return data
        kind, detail = data.get("kind"), data.get("detail")
        if kind is None and detail is not None:
            kind = detail.get("kind") if isinstance(detail, dict) else getattr(detail, "kind", None)
            data = {**data, "kind": kind}
        if detail is None:
            data = {**data, "detail": {"kind": kind}}
        elif isinstance(detail, dict) and "kind" not in detail:
            data = {**data, "detail": {**detail, "kind": kind}}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.detail.kind != self.kind:
            raise ValueError(f"detail is a {self.detail.kind!r} detail but the event kind is {self.kind!r}")
        if self.behaviour is not None:
            if self.category is None:
                self.category = self.behaviour.category
            elif self.category != self.behaviour.category:
                raise ValueError(
                    f"behaviour {self.behaviour.key!r} belongs to APD category "
                    f"{self.behaviour.category!r}, not {self.category!r}"
                )
        return self


class WindowStatus(StrEnum):
    LEARNING = "learning"
    STABLE = "stable"
    COMPLETE = "complete"


class ApdRevision(Record):
    """One revision of an agent's Application Profile DNA (its behavioural envelope)."""

    deployment: DeploymentId
    revision: int = Field(ge=1)
    created_at: datetime
    autonomy: Autonomy
    window_started_at: datetime
    window_ends_at: datetime
    window_status: WindowStatus
    novel_last_hour: int = 0
    behaviours: dict[str, list[str]] = Field(default_factory=dict, description="category -> sorted behaviour keys")
    added: dict[str, list[str]] = Field(
        default_factory=dict, description="what this revision added over the previous one"
    )
    partial: bool = False
    last_deployment_change: datetime | None = None
    pods_seen: list[str] = Field(default_factory=list)
    pending: dict[str, list[str]] = Field(
        default_factory=dict,
        description="a rollout's expected drift, learnt pending an approver: it may apply in observe and "
        "audit, never in an enforce-mode policy until accepted into `behaviours`",
    )
    deployment_revision: PodTemplateRevision | None = Field(
        default=None,
        description="the Deployment revision (pod template, pod-template-hash, image digests) the agent runs now, "
        "from its latest deployment_spec event; None until the profiler has seen one",
    )
    pod_selector: dict[str, Any] | None = Field(
        default=None,
        description="the Deployment's spec.selector (matchLabels, matchExpressions): the pods a policy must select",
    )
    tool_arguments: dict[str, dict[str, ArgumentRule]] | None = Field(
        default=None,
        description="per tool (`server/tool`) and argument path, what the window learnt of its values as a rule "
        "the gateway can check (runward.core.tool_arguments); None: not summarised by this profiler",
    )


class Technique(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uid: str = Field(description="MITRE ATLAS (AML.T...) or ATT&CK (T...) id")
    name: str


class Signal(Record):
    """A single-surface observation worth correlating: a baseline deviation or an input finding."""

    signal_id: str
    deployment: DeploymentId
    ts: datetime
    surface: Surface
    title: str
    behaviour: BehaviourKey | None = None
    techniques: list[Technique] = Field(default_factory=list)
    severity: int = Field(ge=1, le=5, description="OCSF severity_id scale: 1 informational .. 5 critical")
    deployment_correlated: bool = Field(
        default=False, description="follows a Deployment change inside the correlation window"
    )
    evidence: dict[str, Any] = Field(default_factory=dict)
    source_event: str


class StoryStatus(StrEnum):
    """What an attack story is: only a potential compromise holds an agent's promotion gate."""

    POTENTIAL_COMPROMISE = "potential compromise"
    EXPECTED_DRIFT = "expected drift, deployment correlated"


class StoryLifecycle(StrEnum):
    """Where the SOC is with a story. A resolved story is reopened when new linked signals arrive."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"
    BENIGN = "benign"


class AttackStory(Record):
    """Correlated signals of one agent told as one narrative; `ocsf` is the
    OCSF Detection Finding (class_uid 2004) the SOC ingests."""

    story_id: str
    deployment: DeploymentId
    version: int = Field(ge=1, description="grows each time a signal joins the story")
    first_seen: datetime
    last_seen: datetime
    status: StoryStatus
    severity: int = Field(ge=1, le=5)
    surfaces: list[Surface]
    techniques: list[Technique]
    narrative: list[str]
    signals: list[Signal] = Field(description="the story's latest signals (at most 20); signal_count counts all")
    signal_count: int = Field(default=0, ge=0, description="signals that joined the story; 0 in stories before it")
    ocsf: dict[str, Any]
    lifecycle: StoryLifecycle = Field(
        default=StoryLifecycle.OPEN, description="set by approvers through the API; the correlator writes open"
    )
    resolution: Resolution | None = Field(default=None, description="why a resolved story was closed")
    merged_into: str | None = Field(
        default=None, description="a later signal linked this story to an older one, which now tells it whole"
    )
    related_deployments: list[DeploymentId] = Field(
        default_factory=list,
        description="other agents the story spans: the callers whose output or hand-off drove this agent's "
        "multi-agent signals (W3C trace context); the story is told once, on the agent that acted",
    )
    cluster: str | None = Field(default=None, description="the cluster the Deployment runs in (RUNWARD_CLUSTER_NAME)")


class AiBom(Record):
    """The runtime AI-BOM of one agent as CycloneDX 1.6 JSON."""

    deployment: DeploymentId
    revision: int = Field(ge=1)
    created_at: datetime
    lifecycle: Literal["operations", "build"] = "operations"
    cyclonedx: dict[str, Any]


class EnforcementMode(StrEnum):
    OBSERVE = "observe"
    AUDIT = "audit"
    ENFORCE = "enforce"


class PolicyBundle(Record):
    """Policies derived from an APD revision, at the mode the agent was promoted to."""

    deployment: DeploymentId
    revision: int = Field(ge=1)
    created_at: datetime
    apd_revision: int
    mode: EnforcementMode
    egress_allowlist: list[str]
    network_policy: dict[str, Any] | None = Field(
        default=None,
        description="networking.k8s.io/v1 NetworkPolicy, in enforce mode only: core NetworkPolicy has no audit "
        "mode, applying one enforces it",
    )
    seccomp_profile: dict[str, Any] = Field(description="OCI seccomp JSON for a kubelet localhost profile")
    open_stories: list[str] = Field(default_factory=list, description="attack stories that hold the promotion gate")
    deployment_revision: PodTemplateRevision | None = Field(
        default=None,
        description="the Deployment revision (pod template, image digests) whose behaviour it was built from",
    )
    latest_apd_revision: int | None = Field(
        default=None,
        description="the newest APD revision seen; differs from apd_revision while an enforce-mode bundle is frozen",
    )
    proof: PolicyProof | None = Field(default=None, description="the passing proof an enforce-mode bundle needs")
    cilium_network_policy: dict[str, Any] | None = Field(default=None, description="cilium.io/v2 with toFQDNs")
    calico_policy: dict[str, Any] | None = Field(
        default=None, description="projectcalico.org/v3 NetworkPolicy with domains (StagedNetworkPolicy in audit)"
    )
    seccomp_profile_object: dict[str, Any] | None = Field(
        default=None, description="security-profiles-operator.x-k8s.io SeccompProfile"
    )
    deployment_patch: dict[str, Any] | None = Field(
        default=None, description="strategic-merge patch setting the pods' securityContext.seccompProfile"
    )
    tool_policy: BundleToolPolicy | None = Field(default=None, description="tools and arguments the gateway allows")
    mode_reason: str | None = Field(
        default=None,
        description="why the bundle is at a mode the approver did not choose (a rollout put an enforced agent "
        "back in audit under its previous policies)",
    )
    pending_widening: dict[str, list[str]] = Field(
        default_factory=dict,
        description="category -> behaviours newer APD revisions hold that the frozen enforce-mode policies do not "
        "allow; an approver's accept (PromotionDecision.accept_apd_revision) moves them in",
    )


class DeclaredManifest(Record):
    """What an agent is supposed to load, submitted by its deployment pipeline (`runward declare`)."""

    deployment: DeploymentId
    submitted_at: datetime
    deployment_manifest: dict[str, Any] | None = Field(default=None, description="the apps/v1 Deployment")
    requirements: list[str] = Field(default_factory=list, description="requirements.txt / lock file lines")
    mcp_config: dict[str, Any] | None = Field(default=None, description="MCP client configuration (mcpServers)")


class BomFinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal[
        "undeclared_package",
        "version_drift",
        "model_drift",
        "late_tool",
        "undeclared_tool",
        "undeclared_mcp_server",
        "undeclared_endpoint",
        "declared_not_loaded",
    ]
    subject: str
    declared: str | None = None
    observed: str | None = None
    detail: str = ""


class BomDelta(Record):
    """Declared-vs-observed AI-BOM delta: where agent supply-chain incidents live."""

    deployment: DeploymentId
    revision: int = Field(ge=1)
    created_at: datetime
    aibom_revision: int | None = None
    findings: list[BomFinding]
    declared_bom: dict[str, Any] | None = Field(default=None, description="CycloneDX 1.6, lifecycle build")
