"""What a source needs to know that the telemetry itself does not say."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from runward.core.contracts import DeploymentId


class SourceConfig(BaseModel):
    """Attribution and content settings shared by the OTLP receiver and the MCP gateway."""

    model_config = ConfigDict(extra="forbid")

    senders: dict[str, DeploymentId] = Field(
        default_factory=dict,
        description="sender IP -> Deployment id, for telemetry whose resource carries no k8s attributes",
    )
    capture_off: list[DeploymentId] = Field(
        default_factory=list,
        description="Deployments whose prompts, responses and tool arguments are never published",
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="hard cap per request body, on the wire and decompressed"
    )
    requests_per_s: float = Field(default=50.0, gt=0, description="per-sender sustained request rate")
    request_burst: int = Field(default=200, ge=1, description="per-sender requests allowed in a burst")
    bytes_per_s: float = Field(default=32 * 1024 * 1024, gt=0, description="per-sender sustained body bytes/s")
    byte_burst: int = Field(default=128 * 1024 * 1024, ge=1024, description="per-sender body bytes in a burst")

    @field_validator("senders")
    @classmethod
    def _ip_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for ip in value:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise ValueError(f"sender {ip!r} is not an IP address") from None
        return value

    def captures(self, deployment: str | None) -> bool:
        return deployment not in set(self.capture_off)

    @classmethod
    def load(cls, path: Path) -> SourceConfig:
        text = path.read_text()
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return cls.model_validate(data or {})
