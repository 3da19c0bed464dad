"""The agent's tool policy: an allowlist per MCP server, observed or enforced."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class ServerRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(default_factory=list, description="tool names; shell-style patterns allowed")


class ToolPolicy(BaseModel):
    """`mode: observe` only records; `mode: enforce` refuses calls outside the allowlist.

    A server absent from `servers` has no allowed tools: the gateway fails closed.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["observe", "enforce"] = "observe"
    servers: dict[str, ServerRule] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ToolPolicy:
        text = path.read_text()
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return cls.model_validate(data or {})

    def decide(self, server: str, tool: str) -> Decision:
        rule = self.servers.get(server)
        if rule is None:
            return Decision(False, f"MCP server {server!r} has no allowlist in the agent's tool policy")
        if any(fnmatchcase(tool, pattern) for pattern in rule.allow):
            return Decision(True, f"tool {tool!r} is allowed on {server!r}")
        return Decision(False, f"tool {tool!r} is not in the allowlist of MCP server {server!r}")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
