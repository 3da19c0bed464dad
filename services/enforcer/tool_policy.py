"""The bundle's tool policy from the APD: the tools the agent called during observation, each
with the argument rules the profiler learnt for it (`ApdRevision.tool_arguments`).

The MCP gateway applies it at the bundle's mode: observe records, audit records would-be
refusals as evidence, enforce refuses. Like every policy of the bundle it is built from the APD
the bundle is built from (frozen in enforce until an approver accepts a newer revision) and from
`behaviours` only: a rollout's pending drift is never in a policy. Pure: no I/O.
"""

from __future__ import annotations

from runward.core.contracts import ApdRevision, BundleToolPolicy, ToolCall, ToolRule
from services.enforcer.policies import learnt


def tool_policy(apd: ApdRevision) -> BundleToolPolicy:
    """The same tools in every mode: what the gateway does with a call outside them differs."""
    rules = apd.tool_arguments or {}
    tools: dict[str, ToolRule] = {}
    for behaviour in learnt(apd, ToolCall):
        tool = f"{behaviour.server}/{behaviour.name}"
        tools[tool] = ToolRule(tool=tool, arguments=dict(rules.get(tool, {})))
    return BundleToolPolicy(tools=[tools[t] for t in sorted(tools)])
