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
CLUSTER_ROLE_BINDING = Technique(uid="T1098.006", name="Account Manipulation: Additional Container Cluster Roles")
CONTAINER_ADMIN_COMMAND = Technique(uid="T1609", name="Container Administration Command")
ACCESS_TOKEN = Technique(uid="T1528", name="Steal Application Access Token")

_READ_VERBS = frozenset({"get", "list", "watch"})
_WRITE_VERBS = frozenset({"create", "update", "patch"})

# The identity surface's one table: (verbs, API group, resource[/subresource], technique), the
# first match wins; any other API call of an agent's ServiceAccount is discovery (T1613).
IDENTITY_TECHNIQUES: tuple[tuple[frozenset[str], str, str, Technique], ...] = (
    (_WRITE_VERBS, "rbac.authorization.k8s.io", "rolebindings", CLUSTER_ROLE_BINDING),
    (_WRITE_VERBS, "rbac.authorization.k8s.io", "clusterrolebindings", CLUSTER_ROLE_BINDING),
    (_WRITE_VERBS | {"escalate", "bind"}, "rbac.authorization.k8s.io", "roles", CLUSTER_ROLE_BINDING),
    (_WRITE_VERBS | {"escalate", "bind"}, "rbac.authorization.k8s.io", "clusterroles", CLUSTER_ROLE_BINDING),
    (frozenset({"create", "get"}), "core", "pods/exec", CONTAINER_ADMIN_COMMAND),
    (frozenset({"create", "get"}), "core", "pods/attach", CONTAINER_ADMIN_COMMAND),
    (_READ_VERBS, "core", "secrets", CONTAINER_API_CREDS),
    (frozenset({"create"}), "core", "serviceaccounts/token", ACCESS_TOKEN),
)

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
        CLUSTER_ROLE_BINDING,
        CONTAINER_ADMIN_COMMAND,
        ACCESS_TOKEN,
    )
}


# The matrix versions the ids above are taken from (OCSF `attacks[].version`).
ATLAS_VERSION = "ATLAS v5.0.0"
ATTACK_VERSION = "ATT&CK v17.1"

# The tactic (uid, name) each technique serves in its matrix, for OCSF `attacks[].tactic`.
TACTICS: dict[str, tuple[str, str]] = {
    PROMPT_INJECTION.uid: ("AML.TA0005", "Execution"),
    INDIRECT_INJECTION.uid: ("AML.TA0005", "Execution"),
    JAILBREAK.uid: ("AML.TA0012", "Privilege Escalation"),
    TOOL_INVOCATION.uid: ("AML.TA0005", "Execution"),
    EXFIL_VIA_TOOL.uid: ("AML.TA0010", "Exfiltration"),
    C2_APP_PROTOCOL.uid: ("TA0011", "Command and Control"),
    CONTAINER_API_CREDS.uid: ("TA0006", "Credential Access"),
    RESOURCE_DISCOVERY.uid: ("TA0007", "Discovery"),
    INTERPRETER.uid: ("TA0002", "Execution"),
    LOCAL_DATA.uid: ("TA0009", "Collection"),
    ESCAPE_TO_HOST.uid: ("TA0004", "Privilege Escalation"),
    STORED_DATA_MANIPULATION.uid: ("TA0040", "Impact"),
    CLUSTER_ROLE_BINDING.uid: ("TA0003", "Persistence"),
    CONTAINER_ADMIN_COMMAND.uid: ("TA0002", "Execution"),
    ACCESS_TOKEN.uid: ("TA0006", "Credential Access"),
}


def matrix_version(uid: str) -> str:
    """The matrix a technique id belongs to, with its version: ATLAS ids start with `AML.`."""
    return ATLAS_VERSION if uid.startswith("AML.") else ATTACK_VERSION


def for_k8s_api(call: K8sApiCall) -> Technique:
    """What an agent's API call points at, from IDENTITY_TECHNIQUES."""
    for verbs, group, resource, technique in IDENTITY_TECHNIQUES:
        if call.verb in verbs and call.group == group and call.resource == resource:
            return technique
    return RESOURCE_DISCOVERY


def for_behaviour(behaviour: Behaviour) -> list[Technique]:
    if isinstance(behaviour, ToolCall):
        return [TOOL_INVOCATION]
    if isinstance(behaviour, Egress | Dns):
        return [C2_APP_PROTOCOL]
    if isinstance(behaviour, K8sApiCall):
        return [for_k8s_api(behaviour)]
    if isinstance(behaviour, Exec):
        return [INTERPRETER]
    if isinstance(behaviour, File):
        return [LOCAL_DATA]
    if isinstance(behaviour, Capability):
        return [ESCAPE_TO_HOST]
    return []
