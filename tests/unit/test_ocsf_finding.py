"""An attack story's OCSF Detection Finding, validated against the OCSF schema's own files
(tests/data/ocsf, from github.com/ocsf/ocsf-schema): required attributes of the class and of every
object, only attributes the schema defines, attribute types, enum values, `at_least_one`
constraints, and what a SIEM needs to take it as-is (uid, modified time, observables, evidences,
attacks with the matrix version, the cluster)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

from runward.core.contracts import Signal, Surface, Technique, parse_behaviour
from services.correlator.story import correlate

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "ocsf"
T0 = datetime(2026, 11, 30, 9, tzinfo=timezone.utc)
_SCALARS = {
    "timestamp_t": int,
    "integer_t": int,
    "long_t": int,
    "float_t": (int, float),
    "boolean_t": bool,
    "json_t": object,
}


@cache
def _load(relative: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMA / relative).read_text()))


def _parent(relative: str) -> str | None:
    parent = _load(relative).get("extends")
    if not parent or parent == "object":
        return None
    if relative.startswith("objects/"):
        return f"objects/{parent}.json"
    return next(p for p in (f"events/{parent}.json", f"events/findings/{parent}.json") if (SCHEMA / p).exists())


def _attributes(relative: str) -> dict[str, dict[str, Any]]:
    """A class's or object's attributes along its `extends` chain, the child's overriding."""
    spec = _load(relative)
    parent = _parent(relative)
    merged: dict[str, dict[str, Any]] = _attributes(parent) if parent else {}
    for name, attr in spec.get("attributes", {}).items():
        if name != "$include":
            merged[name] = {**merged.get(name, {}), **attr}
    return merged


def _constraints(relative: str) -> dict[str, list[str]]:
    parent = _parent(relative)
    inherited = _constraints(parent) if parent else {}
    return {**inherited, **(_load(relative).get("constraints") or {})}


def _observable_type_ids() -> set[int]:
    dictionary = _load("dictionary.json")
    ids = {0, 99}
    ids |= {int(t["observable"]) for t in dictionary["types"]["attributes"].values() if "observable" in t}
    ids |= {int(a["observable"]) for a in dictionary["attributes"].values() if "observable" in a}
    return ids


# Enums the compiled schema fills in: a class's uid (category * 1000 + class) and the types'
# observable ids.
_FILLED_BY_SCHEMA = {
    ("objects/observable.json", "type_id"),
    ("events/findings/detection_finding.json", "class_uid"),
    ("events/findings/detection_finding.json", "category_uid"),
}


def validate(value: dict[str, Any], spec: str, where: str = "finding") -> list[str]:
    problems: list[str] = []
    attrs = _attributes(spec)
    dictionary = _load("dictionary.json")["attributes"]
    for name, attr in attrs.items():
        if attr.get("requirement") == "required" and name not in value:
            problems.append(f"{where}: required {name} missing")
    for group, names in _constraints(spec).items():
        if group == "at_least_one" and not any(n in value for n in names):
            problems.append(f"{where}: needs at least one of {names}")
    for name, item in value.items():
        if name not in attrs:
            problems.append(f"{where}: {name} is not an attribute of {spec}")
            continue
        known = {**dictionary.get(name, {}), **attrs[name]}
        if (spec, name) in _FILLED_BY_SCHEMA:
            known.pop("enum", None)  # placeholders the compiled schema fills in: checked below
        problems += _check_attribute(item, known, f"{where}.{name}")
    if spec == "events/findings/detection_finding.json":
        # Category "findings" (2), class detection_finding (uid 4 within it).
        category = 2
        expected = category * 1000 + int(_load(spec)["uid"])
        if value.get("category_uid") != category or value.get("class_uid") != expected:
            problems.append(f"{where}: category_uid/class_uid must be {category}/{expected}")
    if spec == "objects/observable.json" and value.get("type_id") not in _observable_type_ids():
        problems.append(f"{where}: type_id {value.get('type_id')} is no OCSF observable type")
    return problems


def _check_attribute(item: Any, known: dict[str, Any], where: str) -> list[str]:
    if not known.get("is_array"):
        return _check(item, known, where)
    if not isinstance(item, list):
        return [f"{where}: must be an array"]
    return [p for i, one in enumerate(item) for p in _check(one, known, f"{where}[{i}]")]


def _check(value: Any, known: dict[str, Any], where: str) -> list[str]:
    kind = known.get("type", "")
    if (SCHEMA / f"objects/{kind}.json").exists():
        return (
            validate(value, f"objects/{kind}.json", where) if isinstance(value, dict) else [f"{where}: not an object"]
        )
    if kind in _SCALARS:
        expected = _SCALARS[kind]
        if isinstance(value, bool) and kind != "boolean_t" or not isinstance(value, expected):  # type: ignore[arg-type]
            return [f"{where}: {value!r} is not {kind}"]
    elif kind.endswith("_t") and not isinstance(value, str):
        return [f"{where}: {value!r} is not {kind} (a string)"]
    enum = known.get("enum")
    if enum and kind == "integer_t" and str(value) not in enum:
        return [f"{where}: {value!r} is not one of {sorted(enum)}"]
    return []


def _signal(sid: str, at: timedelta, surface: Surface, behaviour: str | None, **evidence: Any) -> Signal:
    return Signal(
        signal_id=sid,
        deployment="agents/executor",
        ts=T0 + at,
        surface=surface,
        title=f"{surface.value} {sid}",
        behaviour=parse_behaviour(behaviour) if behaviour else None,
        techniques=[Technique(uid="AML.T0053", name="AI Agent Tool Invocation")] if surface is Surface.TOOL else [],
        severity=3,
        evidence=evidence,
        source_event=sid,
    )


def story_of_every_kind() -> Any:
    signals = [
        _signal(
            "a",
            timedelta(0),
            Surface.MULTI_AGENT,
            "tool:crm/lookup_order",
            pod="executor-1",
            caller_agent="agents/planner",
        ),
        _signal(
            "b", timedelta(seconds=5), Surface.TOOL, "tool:crm/send_email", pod="executor-1", service_account="executor"
        ),
        _signal("c", timedelta(seconds=9), Surface.PROCESS, "exec:/bin/sh", pod="executor-1"),
        _signal(
            "d",
            timedelta(seconds=12),
            Surface.NETWORK,
            "egress:paste.evil.example:443/tcp",
            pod="executor-1",
            detail={"address": "203.0.113.50", "dns_name": "paste.evil.example"},
        ),
    ]
    state, story = None, None
    for s in signals:
        state, story = correlate(state, s, timedelta(minutes=30), cluster="prod-eu-1")
    return story


def test_the_finding_is_valid_ocsf_and_names_what_a_siem_needs() -> None:
    story = story_of_every_kind()
    finding = story.ocsf
    assert validate(finding, "events/findings/detection_finding.json") == []
    assert finding["class_uid"] == 2004 and finding["type_uid"] == 200402
    meta = finding["metadata"]
    assert meta["uid"] == story.story_id == finding["finding_info"]["uid"]
    assert meta["modified_time"] == int(story.last_seen.timestamp() * 1000) == finding["finding_info"]["modified_time"]
    observed = {(o["name"], o["type_id"], o["value"]) for o in finding["observables"]}
    assert {
        ("ip", 2, "203.0.113.50"),
        ("domain", 1, "paste.evil.example"),
        ("service_account", 4, "system:serviceaccount:agents:executor"),
        ("pod", 10, "agents/executor-1"),
        ("process", 9, "/bin/sh"),
        ("tool", 99, "crm/send_email"),
        ("deployment", 10, "agents/planner"),
    } <= observed
    assert [e["data"]["signal_id"] for e in finding["evidences"]] == ["a", "b", "c", "d"]
    [attack] = [a for a in finding["finding_info"]["attacks"] if a["technique"]["uid"] == "AML.T0053"]
    assert attack["version"].startswith("ATLAS v") and attack["tactic"]["uid"] == "AML.TA0005"
    c2 = [a for a in finding["finding_info"]["attacks"] if a["technique"]["uid"] == "T1071"]
    assert not c2 or c2[0]["version"].startswith("ATT&CK v")
    # The cluster tells a SIEM fed by several clusters which one the Deployment ids belong to.
    assert {r["uid"] for r in finding["resources"]} == {"prod-eu-1/agents/executor", "prod-eu-1/agents/planner"}
    assert finding["unmapped"]["k8s.cluster.name"] == "prod-eu-1"
    assert story.related_deployments == ["agents/planner"]


def test_the_validator_refuses_what_ocsf_does_not_allow() -> None:
    finding = story_of_every_kind().ocsf
    broken = json.loads(json.dumps(finding))
    del broken["metadata"]["version"]
    broken["observables"][0]["type_id"] = 77
    broken["finding_info"]["attacks"][0] = {"version": "ATLAS v5.0.0"}
    broken["time"] = "yesterday"
    broken["made_up"] = 1
    problems = validate(broken, "events/findings/detection_finding.json")
    assert any("required version missing" in p for p in problems)
    assert any("type_id 77" in p for p in problems)
    assert any("at least one of" in p for p in problems)
    assert any("finding.time" in p for p in problems)
    assert any("made_up" in p for p in problems)
