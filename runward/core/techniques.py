"""Which MITRE ATLAS / ATT&CK technique a deviation on each surface points at."""

from __future__ import annotations

from runward.core.contracts import (
    Behaviour,
    Capability,
    Dns,
    Egress,
    Exec,
    File,
    K8sApiCall,
    Technique,
    ToolCall,
)

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
# A forged promotion decision: manipulating the stored data a defence acts on.
STORED_DATA_MANIPULATION = Technique(uid="T1565.001", name="Data Manipulation: Stored Data Manipulation")

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
        STORED_DATA_MANIPULATION,
    )
}


def for_behaviour(behaviour: Behaviour) -> list[Technique]:
    if isinstance(behaviour, ToolCall):
        return [TOOL_INVOCATION]
    if isinstance(behaviour, Egress | Dns):
        return [C2_APP_PROTOCOL]
    if isinstance(behaviour, K8sApiCall):
        return [CONTAINER_API_CREDS] if behaviour.is_secret_read else [RESOURCE_DISCOVERY]
    if isinstance(behaviour, Exec):
        return [INTERPRETER]
    if isinstance(behaviour, File):
        return [LOCAL_DATA]
    if isinstance(behaviour, Capability):
        return [ESCAPE_TO_HOST]
    return []
