"""The single source of truth for every record that crosses a topic.

Services import these models; they never redefine a record.
"""

from runward.contracts.common import (
    Attribution,
    DeploymentId,
    Record,
    UnknownSchemaVersion,
    deployment_id,
    utcnow,
)
from runward.contracts.ops import DeadLetter, PromotionDecision
from runward.contracts.pipeline import (
    AiBom,
    ApdRevision,
    AttackStory,
    BomDelta,
    BomFinding,
    DeclaredManifest,
    EnforcementMode,
    EnrichedEvent,
    PolicyBundle,
    Signal,
    SourceRef,
    Surface,
    Technique,
    WindowStatus,
)
from runward.contracts.raw import (
    CapabilityDetail,
    ConnectDetail,
    DnsDetail,
    ExecDetail,
    ExitDetail,
    FileOpenDetail,
    K8sAuditEvent,
    K8sObjectEvent,
    RawK8sRecord,
    RawLlmEvent,
    RawSensorEvent,
    SyscallSetDetail,
)

__all__ = [
    "AiBom", "ApdRevision", "AttackStory", "BomDelta", "BomFinding", "DeclaredManifest", "Attribution", "CapabilityDetail", "ConnectDetail",
    "DeadLetter", "DeploymentId", "DnsDetail", "EnforcementMode", "EnrichedEvent", "ExecDetail",
    "ExitDetail", "FileOpenDetail", "K8sAuditEvent", "K8sObjectEvent", "PolicyBundle",
    "PromotionDecision", "RawK8sRecord", "RawLlmEvent", "RawSensorEvent", "Record", "Signal",
    "SourceRef", "Surface", "SyscallSetDetail", "Technique", "UnknownSchemaVersion", "WindowStatus",
    "deployment_id", "utcnow",
]
