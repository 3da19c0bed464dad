"""Behaviour keys: every kind round-trips through its one string form, and bad keys say what is wrong."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runward.core.contracts import (
    AgentEdge,
    Behaviour,
    Capability,
    Dns,
    Egress,
    Exec,
    File,
    Ingress,
    K8sApiCall,
    LlmCall,
    Syscall,
    ToolCall,
    parse_behaviour,
    parse_endpoint,
)
from runward.core.contracts.behaviours import KINDS

# A lone surrogate is no string a record may hold (pydantic refuses it at the edge: dead letter).
_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
_no_slash = st.text(st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), min_size=1, max_size=30)
_no_space = st.text(st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")), min_size=1, max_size=20).filter(
    lambda s: not any(c.isspace() for c in s)
)
_port = st.integers(min_value=0, max_value=65535)
_protocol = st.sampled_from(["tcp", "udp"])
_dns_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
_deployment = st.builds(lambda ns, name: f"{ns}/{name}", _dns_label, _dns_label)

BEHAVIOURS: st.SearchStrategy[Behaviour] = st.one_of(
    st.builds(Exec, binary=_text),
    st.builds(File, path=_text),
    st.builds(Egress, host=_text, port=_port, protocol=_protocol),
    st.builds(Ingress, port=_port, protocol=_protocol),
    st.builds(Dns, name=_text),
    st.builds(Syscall, name=_text),
    st.builds(Capability, capability=_text),
    st.builds(ToolCall, server=_no_slash, name=_text),
    st.builds(LlmCall, provider=_no_slash, model=_text),
    st.builds(
        K8sApiCall,
        verb=_no_space,
        group=_no_space.filter(lambda s: "/" not in s),
        resource=st.one_of(st.just(""), _no_space),
        scope=_no_space,
    ),
    st.builds(AgentEdge, caller=_deployment),
)


@given(BEHAVIOURS)
def test_every_behaviour_round_trips_through_its_key(behaviour: Behaviour) -> None:
    parsed = parse_behaviour(behaviour.key)
    assert parsed == behaviour and type(parsed) is type(behaviour)
    assert parsed.key == behaviour.key


@given(st.builds(Egress, host=_text, port=_port, protocol=_protocol))
def test_an_endpoint_round_trips_as_an_egress(egress: Egress) -> None:
    assert parse_endpoint(egress.endpoint) == egress


def test_the_strategy_covers_every_kind() -> None:
    assert {k.PREFIX for k in KINDS} == {
        "exec",
        "file",
        "egress",
        "ingress",
        "dns",
        "syscall",
        "cap",
        "tool",
        "llm",
        "k8s-api",
        "agent",
    }


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # Today's keys, exactly as stored APDs hold them.
        ("exec:/usr/bin/python3", Exec(binary="/usr/bin/python3")),
        ("file:/proc/*/status", File(path="/proc/*/status")),
        ("egress:api.openai.com:443/tcp", Egress(host="api.openai.com", port=443, protocol="tcp")),
        ("egress:2001:db8::1:53/udp", Egress(host="2001:db8::1", port=53, protocol="udp")),
        ("ingress:8080/tcp", Ingress(port=8080, protocol="tcp")),
        ("dns:api.openai.com", Dns(name="api.openai.com")),
        ("syscall:openat", Syscall(name="openat")),
        ("cap:CAP_NET_BIND_SERVICE", Capability(capability="CAP_NET_BIND_SERVICE")),
        ("tool:time/get_current_time", ToolCall(server="time", name="get_current_time")),
        ("tool:github/repos/create_issue", ToolCall(server="github", name="repos/create_issue")),
        ("llm:openai/gpt-4o", LlmCall(provider="openai", model="gpt-4o")),
        ("llm:hf/meta-llama/Llama-3.2-1B", LlmCall(provider="hf", model="meta-llama/Llama-3.2-1B")),
        (
            "k8s-api:list core/secrets in agents",
            K8sApiCall(verb="list", group="core", resource="secrets", scope="agents"),
        ),
        (
            "k8s-api:create core/pods/exec in agents",
            K8sApiCall(verb="create", group="core", resource="pods/exec", scope="agents"),
        ),
        ("k8s-api:get core/ in cluster", K8sApiCall(verb="get", group="core", resource="", scope="cluster")),
        ("agent:agents/planner", AgentEdge(caller="agents/planner")),
    ],
)
def test_known_keys_parse_to_their_fields(key: str, expected: Behaviour) -> None:
    assert parse_behaviour(key) == expected and expected.key == key


def test_categories_are_the_apd_categories() -> None:
    assert Syscall(name="read").category == "syscalls"
    assert ToolCall(server="s", name="t").category == "mcp_tools"
    assert Capability(capability="CAP_SYS_ADMIN").category == "capabilities"
    assert K8sApiCall(verb="get", group="core", resource="pods", scope="a").category == "k8s_api"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("python3", "behaviour key 'python3' has no known kind"),
        ("telnet:host", "behaviour key 'telnet:host' has no known kind; a key is <kind>:<value>"),
        ("exec:", "behaviour key 'exec:' is not a valid exec behaviour: binary"),
        ("egress:api.openai.com/tcp", "expected egress:<host>:<port>/<tcp|udp>"),
        ("egress:api.openai.com:443/sctp", "expected egress:<host>:<port>/<tcp|udp>"),
        ("egress:host:70000/tcp", "egress behaviour: port: Input should be less than or equal to 65535"),
        ("egress:host:0443/tcp", "expected egress:<host>:<port>/<tcp|udp>"),
        ("ingress:http", "expected ingress:<port>/<tcp|udp>"),
        ("tool:get_time", "expected tool:<server>/<name>"),
        ("llm:/gpt-4o", "llm behaviour: provider"),
        ("k8s-api:list secrets", "expected k8s-api:<verb> <group>/<resource> in <namespace|cluster>"),
        ("agent:Planner", "agent behaviour: caller: Value error, deployment id 'Planner'"),
    ],
)
def test_a_bad_key_is_a_value_error_naming_it(key: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_behaviour(key)


def test_behaviours_are_values() -> None:
    a, b = Egress(host="h", port=1), Egress(host="h", port=1, protocol="tcp")
    assert a == b and len({a, b}) == 1
    with pytest.raises(ValueError, match="frozen"):
        a.port = 2  # type: ignore[misc]
