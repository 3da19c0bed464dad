"""An attack story as an OCSF Detection Finding (class_uid 2004), built with py-ocsf-models.

What a SIEM needs to take it as-is: `metadata.uid` (the story id: every version of a story is the
same finding, `metadata.version` the OCSF schema, `finding_info.modified_time` and
`metadata.modified_time` when it last grew), `observables` with OCSF type ids (IP addresses and
host names it reached, ServiceAccount, pod, process, tool, the Deployments), `evidences` (one per
signal: what was seen, on which surface, with which behaviour), `attacks[]` with tactic,
technique and the matrix version (MITRE ATLAS or ATT&CK), and the cluster the Deployment runs in
(the resources' `uid` and labels, `unmapped.k8s.cluster.name`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from py_ocsf_models.events.base_event import SeverityID
from py_ocsf_models.events.findings.activity_id import ActivityID
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.events.findings.detection_finding_type_id import DetectionFindingTypeID
from py_ocsf_models.events.findings.status_id import StatusID
from py_ocsf_models.objects.evidence_artifacts import EvidenceArtifacts
from py_ocsf_models.objects.finding_info import FindingInformation
from py_ocsf_models.objects.metadata import Metadata
from py_ocsf_models.objects.mitre_attack import MITREAttack, Tactic
from py_ocsf_models.objects.mitre_attack import Technique as OcsfTechnique
from py_ocsf_models.objects.observable import Observable
from py_ocsf_models.objects.observable import TypeID as ObservableType
from py_ocsf_models.objects.product import Product
from py_ocsf_models.objects.resource_details import ResourceDetails

from runward.core import techniques
from runward.core.contracts import Dns, Egress, Exec, ToolCall

if TYPE_CHECKING:
    from runward.core.contracts import AttackStory, Signal

OCSF_VERSION = "1.5.0"


def _ms(story_time: Any) -> int:
    return int(story_time.timestamp() * 1000)


def _status(story: AttackStory) -> StatusID:
    """The SOC's lifecycle as OCSF status: a false positive is suppressed, other closes resolved."""
    if story.merged_into:
        return StatusID.Archived  # told whole by the story it was merged into
    if story.lifecycle == "resolved":
        return StatusID.Suppressed if story.resolution == "false_positive" else StatusID.Resolved
    return StatusID.InProgress if story.lifecycle == "acknowledged" else StatusID.New


def _resource(deployment: str, cluster: str | None) -> ResourceDetails:
    namespace, _, name = deployment.partition("/")
    return ResourceDetails(
        type="Deployment",
        name=name,
        namespace=namespace,
        uid=f"{cluster}/{deployment}" if cluster else deployment,
        labels=[f"cluster:{cluster}"] if cluster else None,
    )


def _signal_observables(signal: Signal) -> list[tuple[str, ObservableType, str]]:
    """(name, OCSF type, value) of what one signal names."""
    namespace = signal.deployment.split("/")[0]
    evidence = signal.evidence
    detail = evidence.get("detail")
    detail = detail if isinstance(detail, dict) else {}
    found: list[tuple[str, ObservableType, str]] = []
    if evidence.get("pod"):
        found.append(("pod", ObservableType.Resource_UID, f"{namespace}/{evidence['pod']}"))
    if evidence.get("service_account"):
        sa = f"system:serviceaccount:{namespace}:{evidence['service_account']}"
        found.append(("service_account", ObservableType.User_Name, sa))
    if detail.get("address"):
        found.append(("ip", ObservableType.IP_Address, str(detail["address"])))
    if detail.get("dns_name"):
        found.append(("domain", ObservableType.Hostname, str(detail["dns_name"])))
    return found + _behaviour_observables(signal.behaviour)


def _behaviour_observables(behaviour: object) -> list[tuple[str, ObservableType, str]]:
    if isinstance(behaviour, Egress):
        return [("domain", ObservableType.Hostname, behaviour.host)]
    if isinstance(behaviour, Dns):
        return [("domain", ObservableType.Hostname, behaviour.name)]
    if isinstance(behaviour, Exec):
        return [("process", ObservableType.Process_Name, behaviour.binary)]
    if isinstance(behaviour, ToolCall):
        return [("tool", ObservableType.Other, f"{behaviour.server}/{behaviour.name}")]
    return []


def _observables(story: AttackStory) -> list[Observable]:
    seen: dict[tuple[str, str], Observable] = {}
    for deployment in [story.deployment, *story.related_deployments]:
        seen[("deployment", deployment)] = Observable(
            name="deployment", type_id=ObservableType.Resource_UID, type="Resource UID", value=deployment
        )
    for signal in story.signals:
        for name, type_id, value in _signal_observables(signal):
            if value and (name, value) not in seen:
                seen[(name, value)] = Observable(
                    name=name, type_id=type_id, type=type_id.name.replace("_", " "), value=value
                )
    return list(seen.values())


def _evidences(story: AttackStory) -> list[EvidenceArtifacts]:
    return [
        EvidenceArtifacts(
            name=s.title,
            data={
                "signal_id": s.signal_id,
                "surface": s.surface.value,
                "time": _ms(s.ts),
                "behaviour": s.behaviour.key if s.behaviour is not None else None,
                "techniques": [t.uid for t in s.techniques],
                "deployment_correlated": s.deployment_correlated,
                "pod": s.evidence.get("pod"),
            },
        )
        for s in story.signals
    ]


def _attack(uid: str, name: str) -> MITREAttack:
    tactic = techniques.TACTICS.get(uid)
    return MITREAttack(
        technique=OcsfTechnique(uid=uid, name=name),
        tactic=Tactic(uid=tactic[0], name=tactic[1]) if tactic else None,
        version=techniques.matrix_version(uid),
    )


def detection_finding(story: AttackStory) -> dict[str, Any]:
    first = story.version == 1
    modified: datetime = story.last_seen
    finding = DetectionFinding(
        activity_id=ActivityID.Create if first else ActivityID.Update,
        activity_name="Create" if first else "Update",
        type_uid=DetectionFindingTypeID.Create if first else DetectionFindingTypeID.Update,
        severity_id=SeverityID(story.severity),
        severity=SeverityID(story.severity).name,
        status_id=_status(story),
        status=_status(story).name,
        status_detail=story.resolution,
        time=_ms(story.last_seen),
        start_time=_ms(story.first_seen),
        end_time=_ms(story.last_seen),
        count=story.signal_count or len(story.signals),
        message=f"{story.status}: {story.deployment} across {', '.join(s.value for s in story.surfaces)}",
        metadata=Metadata(
            product=Product(name="Runward", vendor_name="Runward"),
            version=OCSF_VERSION,
            uid=story.story_id,
            correlation_uid=story.story_id,
            sequence=story.version,
        ),
        observables=_observables(story),
        evidences=_evidences(story),
        finding_info=FindingInformation(
            uid=story.story_id,
            title=f"Attack story on {story.deployment}: {story.status}",
            desc="\n".join(story.narrative),
            types=[story.status],
            first_seen_time=_ms(story.first_seen),
            last_seen_time=_ms(story.last_seen),
            created_time=_ms(story.first_seen),
            modified_time=_ms(modified),
            attacks=[_attack(t.uid, t.name) for t in story.techniques],
            data_sources=sorted(s.value for s in story.surfaces),
        ),
        resources=[_resource(d, story.cluster) for d in [story.deployment, *story.related_deployments]],
    )
    rendered = finding.model_dump(mode="json", exclude_none=True)
    # OCSF times are epoch milliseconds (timestamp_t); the library types this one as a datetime.
    rendered["metadata"]["modified_time"] = _ms(modified)
    if story.cluster:
        rendered["unmapped"] = {"k8s.cluster.name": story.cluster}
    return rendered
