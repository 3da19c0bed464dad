"""An attack story as an OCSF Detection Finding (class_uid 2004), built with py-ocsf-models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from py_ocsf_models.events.base_event import SeverityID
from py_ocsf_models.events.findings.activity_id import ActivityID
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.events.findings.detection_finding_type_id import DetectionFindingTypeID
from py_ocsf_models.events.findings.status_id import StatusID
from py_ocsf_models.objects.finding_info import FindingInformation
from py_ocsf_models.objects.metadata import Metadata
from py_ocsf_models.objects.mitre_attack import MITREAttack
from py_ocsf_models.objects.mitre_attack import Technique as OcsfTechnique
from py_ocsf_models.objects.product import Product
from py_ocsf_models.objects.resource_details import ResourceDetails

if TYPE_CHECKING:
    from runward.core.contracts import AttackStory

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


def detection_finding(story: AttackStory) -> dict[str, Any]:
    first = story.version == 1
    namespace, _, name = story.deployment.partition("/")
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
            product=Product(name="Runward", vendor_name="Runward"), version=OCSF_VERSION, correlation_uid=story.story_id
        ),
        finding_info=FindingInformation(
            uid=story.story_id,
            title=f"Attack story on {story.deployment}: {story.status}",
            desc="\n".join(story.narrative),
            types=[story.status],
            first_seen_time=_ms(story.first_seen),
            last_seen_time=_ms(story.last_seen),
            attacks=[
                MITREAttack(
                    technique=OcsfTechnique(uid=t.uid, name=t.name),
                    version="ATLAS" if t.uid.startswith("AML.") else "ATT&CK",
                )
                for t in story.techniques
            ],
            data_sources=sorted(s.value for s in story.surfaces),
        ),
        resources=[ResourceDetails(type="Deployment", name=name, namespace=namespace, uid=story.deployment)],
    )
    return finding.model_dump(mode="json", exclude_none=True)
