"""The enforcer's outputs do not move when its cost does: the bundles of a fixed run are byte for
byte those recorded before it reused documents and shared state (`tests/enforcer/golden.py`),
again when every document is already built, and `apply` leaves the state and record it is given
as they were (a record that fails, or a bundle the gate refuses, must leave nothing behind)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import BaseModel

from runward.core.contracts import ApdRevision, Dns, Egress, EnforcementMode
from services.enforcer.documents import documents
from services.enforcer.domain import EnforcerState, PromotionRefused, apply
from services.enforcer.memo import forget
from services.enforcer.policies import learnt
from tests.enforcer import golden


def _first_difference(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> str:
    for have, expected in zip(got, want, strict=False):
        if have != expected:
            return f"first difference at {expected['deployment']} step {expected['step']}:\n{have}\n!=\n{expected}"
    return f"{len(got)} outcomes, {len(want)} recorded"


def test_the_bundles_are_byte_identical_to_the_recorded_run() -> None:
    want = json.loads(golden.GOLDEN.read_text())
    got = golden.run()
    assert got == want, _first_difference(got, want)


def test_a_second_run_on_documents_already_built_is_the_same() -> None:
    """Whatever a run leaves behind to reuse, a later run of the same records yields the same
    bytes, and so does one that reuses nothing."""
    first = golden.run()
    assert golden.run() == first
    forget()
    assert golden.run() == first


def _dump(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value.model_dump() if isinstance(value, BaseModel) else value


def test_apply_leaves_the_given_state_and_record_unchanged() -> None:
    states: dict[str, EnforcerState | None] = dict.fromkeys(golden.SELECTORS)
    handed_out: list[tuple[EnforcerState, dict[str, Any]]] = []
    for deployment, step, record, report in golden.interleaved():
        given, before, record_before = states[deployment], _dump(states[deployment]), record.model_dump()
        try:
            state, _ = apply(given, record, golden.NOW, report)
        except PromotionRefused:
            state = None
        assert _dump(given) == before, f"apply changed the state it was given at {deployment} step {step}"
        assert record.model_dump() == record_before, f"apply changed its record at {deployment} step {step}"
        if state is not None:
            states[deployment] = state
            handed_out.append((state, state.model_dump()))
    # No later record reached back into a state an earlier one returned (the table may hold it).
    for state, dumped in handed_out:
        assert state.model_dump() == dumped


def _variants() -> list[ApdRevision]:
    """One APD and others differing from it in one input of one document each, same revision."""
    base = golden._apd("agents/bot", 4, golden.EGRESS)
    addresses = {**base.behaviours, "egress": ["egress:10.0.3.7:443/tcp"], "egress_ip": []}

    def changed(category: str, keys: list[str]) -> ApdRevision:
        return base.model_copy(update={"behaviours": {**base.behaviours, category: keys}})

    return [
        base,
        changed("egress", [*golden.EGRESS, "egress:paste.example:443/tcp"]),
        changed("egress_ip", ["162.159.140.246:443/tcp"]),
        changed("ingress", ["ingress:8081/tcp"]),
        changed("syscalls", ["syscall:read"]),
        changed("mcp_tools", ["tool:time/get_current_time"]),
        base.model_copy(update={"behaviours": {**addresses, "dns": []}}),
        base.model_copy(update={"behaviours": {**addresses, "dns": ["dns:api.openai.com"]}}),
        base.model_copy(update={"tool_arguments": None}),
        base.model_copy(update={"pod_selector": golden.SELECTORS["agents/late"]}),
        base.model_copy(update={"pod_selector": None}),
        base.model_copy(update={"deployment": "agents/twin"}),
        base.model_copy(update={"revision": 5}),
    ]


@pytest.mark.parametrize("mode", list(EnforcementMode))
@pytest.mark.parametrize("runtime", [(), ("execve", "fstatfs")])
def test_documents_kept_for_one_input_are_never_those_of_another(
    mode: EnforcementMode, runtime: tuple[str, ...]
) -> None:
    """Each input a document is built from tells it apart: built one after another (reusing what
    is kept) the documents are those built afresh for each."""
    variants = _variants()
    reused = [documents(v, mode, runtime) for v in variants]
    afresh = []
    for variant in variants:
        forget()
        afresh.append(documents(variant, mode, runtime))
    assert [_dump(d) for d in reused] == [_dump(d) for d in afresh]


def test_a_bundles_documents_are_its_own() -> None:
    """Changing one bundle's documents changes no other bundle's, nor what is kept."""
    source = _variants()[0]
    first = documents(source, EnforcementMode.ENFORCE, ("execve",))
    want = _dump(copy.deepcopy(first))
    for name in ("network_policy", "cilium_network_policy", "calico_policy", "seccomp_profile"):
        first[name]["spec" if name != "seccomp_profile" else "syscalls"].clear()
    first["seccomp_profile_object"]["spec"]["syscalls"][0]["names"].append("ptrace")
    first["deployment_patch"]["metadata"]["name"] = "other"
    first["egress_allowlist"].append("evil.example:443/tcp")
    first["tool_policy"].tools.clear()
    assert _dump(documents(source, EnforcementMode.ENFORCE, ("execve",))) == want


def test_keys_parsed_under_one_category_are_still_refused_under_another() -> None:
    """Parsed keys are kept per category: the same keys filed under the wrong one are a corrupt
    APD every time, named in each refusal."""
    base = golden._apd("agents/bot", 4, golden.EGRESS)
    assert learnt(base, Dns) == [Dns(name="api.openai.com")]
    for revision in (4, 5):
        corrupt = base.model_copy(
            update={"revision": revision, "behaviours": {**base.behaviours, "egress": base.behaviours["dns"]}}
        )
        with pytest.raises(ValueError, match=f"APD agents/bot revision {revision} holds 'dns:api.openai.com'"):
            learnt(corrupt, Egress)
