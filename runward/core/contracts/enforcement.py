"""Records of the Enforce pillar beyond the policy bundle itself: the proof that a bundle's
enforce-mode policies let the observed workload run, the would-be violations audit mode
collects, and the tool policy the gateway applies.

Why a proof is a record: "fix without breaking" is only a promise until the generated seccomp
profile and egress allowlist have run the agent's own recorded workload under the real OCI
runtime. The enforcer emits an enforce-mode bundle only for a profile whose proof passed, and
the bundle carries that proof, so whoever applies it can see what it was tested against.

Why audit evidence is its own topic: in audit mode nothing is refused, so the only product of
audit is the list of what *would* have been refused. Seccomp (`SCMP_ACT_LOG`, kernel audit
type 1326), the tool gateway and the local network allowlist each report it, attributed to the
agent; the promotion gate's audit soak reads it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runward.core.contracts.common import DeploymentId, Record


class PolicyProof(Record):
    """The result of running an agent's recorded workload under its candidate enforce-mode policies.

    Written by `runward prove` through the API (which signs it, like a promotion decision); the
    enforcer checks the signature and that `profile_sha256` is the profile it would emit.
    """

    deployment: DeploymentId
    apd_revision: int = Field(ge=1, description="the APD revision the proven policies were built from")
    profile_sha256: str = Field(description="sha256 of the canonical enforce-mode seccomp profile that was run")
    egress_allowlist: list[str] = Field(default_factory=list, description="destinations the proof allowed")
    passed: bool
    ran_at: datetime
    runtime: str = Field(description="the OCI runtime and its version, e.g. `runc 1.1.5`")
    command: list[str] = Field(default_factory=list, description="the recorded workload that was run")
    exit_code: int | None = None
    refused_syscalls: list[str] = Field(default_factory=list, description="syscalls the profile would refuse")
    refused_destinations: list[str] = Field(default_factory=list, description="destinations the allowlist dropped")
    runtime_syscalls: list[str] = Field(
        default_factory=list, description="what the OCI runtime itself needed, measured from it, added to the profile"
    )
    summary: str = ""
    prover: str = Field(default="", description="the person (approver token holder) who submitted the proof")
    signature: str | None = Field(default=None, description="hmac-sha256:<hex> by the API (runward.core.signing)")


class EvidenceSource(StrEnum):
    SECCOMP = "seccomp"
    GATEWAY = "gateway"
    NETWORK = "network"


class AuditEvidence(Record):
    """One would-be violation seen while the agent ran in audit mode (or observe, for the record)."""

    evidence_id: str
    deployment: DeploymentId
    ts: datetime = Field(description="when the collector saw it (trusted time, not the agent's)")
    source: EvidenceSource
    action: str = Field(description="what would have been refused: a syscall name, `server/tool`, or host:port")
    reason: str = Field(default="", description="why the policy would refuse it")
    pod: str | None = None
    bundle_revision: int | None = Field(default=None, description="the policy bundle the agent ran under")
    detail: dict[str, Any] = Field(default_factory=dict, description="collector specifics (pid, comm, audit line)")


class ArgumentRule(BaseModel):
    """What the APD learnt of one tool argument, as a constraint the gateway can check."""

    model_config = ConfigDict(extra="forbid")

    types: list[str] = Field(default_factory=list, description="JSON types seen; empty means any")
    min_value: float | None = None
    max_value: float | None = None
    max_length: int | None = None
    values: list[str] | None = Field(default=None, description="the allowed values of an enum-like argument")
    path_prefixes: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)


class ToolRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str = Field(description="canonical tool identity `server/tool`")
    arguments: dict[str, ArgumentRule] = Field(default_factory=dict)


class BundleToolPolicy(BaseModel):
    """The tools an agent may call, from its APD, at the bundle's mode (the gateway enforces it)."""

    model_config = ConfigDict(extra="forbid")

    tools: list[ToolRule] = Field(default_factory=list)
