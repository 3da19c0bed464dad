"""Pieces every record shares: schema versioning and the agent identity."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def _check_deployment_id(value: str) -> str:
    namespace, sep, name = value.partition("/")
    if not sep or not _DNS_NAME.match(namespace) or not _DNS_NAME.match(name):
        raise ValueError(f"deployment id {value!r} must be 'namespace/name' with Kubernetes DNS-1123 names")
    return value


DeploymentId = Annotated[str, AfterValidator(_check_deployment_id)]
"""An agent's identity across pods, ReplicaSets and restarts: `namespace/name` of its Deployment."""


def deployment_id(namespace: str, name: str) -> str:
    return _check_deployment_id(f"{namespace}/{name}")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UnknownSchemaVersion(ValueError):
    pass


class Record(BaseModel):
    """Base of every record that crosses a topic.

    `schema_version` is checked on decode: a consumer rejects a version it does not
    know instead of guessing, so a producer upgrade cannot silently corrupt a baseline.
    """

    model_config = ConfigDict(extra="forbid")

    SUPPORTED_VERSIONS: ClassVar[frozenset[int]] = frozenset({1})
    schema_version: int = 1

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value not in cls.SUPPORTED_VERSIONS:
            raise UnknownSchemaVersion(
                f"schema_version {value} is not supported by {cls.__name__} "
                f"(supported: {sorted(cls.SUPPORTED_VERSIONS)}); upgrade this consumer"
            )
        return value


class Attribution(BaseModel):
    """Who did it, as far as the producer knows. Ingest fills the gaps."""

    model_config = ConfigDict(extra="forbid")

    node: str | None = None
    cgroup_id: int | None = None
    container_id: str | None = None
    pod_uid: str | None = None
    namespace: str | None = None
    pod: str | None = None
    deployment: DeploymentId | None = None
    service_account: str | None = None
