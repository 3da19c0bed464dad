"""Which MITRE ATLAS / ATT&CK technique a deviation on each surface points at."""

from __future__ import annotations

from runward.core.contracts import Technique

PROMPT_INJECTION = Technique(uid="AML.T0051", name="LLM Prompt Injection")
JAILBREAK = Technique(uid="AML.T0054", name="LLM Jailbreak")
INDIRECT_INJECTION = Technique(uid="AML.T0051.001", name="LLM Prompt Injection: Indirect")
TOOL_INVOCATION = Technique(uid="AML.T0053", name="AI Agent Tool Invocation")
EXFIL_VIA_TOOL = Technique(uid="AML.T0086", name="Exfiltration via AI Agent Tool Invocation")
C2_APP_PROTOCOL = Technique(uid="T1071", name="Application Layer Protocol")
CONTAINER_API_CREDS = Technique(uid="T1552.007", name="Unsecured Credentials: Container API")
RESOURCE_DISCOVERY = Technique(uid="T1613", name="Container and Resource Discovery")
INTERPRETER = Technique(uid="T1059", name="Command and Scripting Interpreter")
LOCAL_DATA = Technique(uid="T1005", name="Data from Local System")
ESCAPE_TO_HOST = Technique(uid="T1611", name="Escape to Host")

BY_ID = {
    t.uid: t
    for t in (
        PROMPT_INJECTION,
        JAILBREAK,
        INDIRECT_INJECTION,
        TOOL_INVOCATION,
        EXFIL_VIA_TOOL,
        C2_APP_PROTOCOL,
        CONTAINER_API_CREDS,
        RESOURCE_DISCOVERY,
        INTERPRETER,
        LOCAL_DATA,
        ESCAPE_TO_HOST,
    )
}


def for_behaviour(category: str, behaviour: str) -> list[Technique]:
    if category == "mcp_tools":
        return [TOOL_INVOCATION]
    if category in {"egress", "dns"}:
        return [C2_APP_PROTOCOL]
    if category == "k8s_api":
        return [CONTAINER_API_CREDS] if " core/secrets " in behaviour else [RESOURCE_DISCOVERY]
    if category == "exec":
        return [INTERPRETER]
    if category == "file":
        return [LOCAL_DATA]
    if category == "capabilities":
        return [ESCAPE_TO_HOST]
    return []
