"""The single source of truth for every record that crosses a topic.

Services import these models; they never redefine a record.
"""

from runward.core.contracts.common import (
    Attribution,
    DeploymentId,
    Record,
    UnknownSchemaVersion,
    deployment_id,
    utcnow,
)
from runward.core.contracts.ops import DeadLetter, PromotionDecision
from runward.core.contracts.pipeline import (
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
from runward.core.contracts.raw import (
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
from runward.core.contracts.revision import PodTemplateRevision

__all__ = [
    "AiBom",
    "ApdRevision",
    "AttackStory",
    "Attribution",
    "BomDelta",
    "BomFinding",
    "CapabilityDetail",
    "ConnectDetail",
    "DeadLetter",
    "DeclaredManifest",
    "DeploymentId",
    "DnsDetail",
    "EnforcementMode",
    "EnrichedEvent",
    "ExecDetail",
    "ExitDetail",
    "FileOpenDetail",
    "K8sAuditEvent",
    "K8sObjectEvent",
    "PodTemplateRevision",
    "PolicyBundle",
    "PromotionDecision",
    "RawK8sRecord",
    "RawLlmEvent",
    "RawSensorEvent",
    "Record",
    "Signal",
    "SourceRef",
    "Surface",
    "SyscallSetDetail",
    "Technique",
    "UnknownSchemaVersion",
    "WindowStatus",
    "deployment_id",
    "utcnow",
]
