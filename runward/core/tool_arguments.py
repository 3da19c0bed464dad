"""Tool arguments as the profiler learns them and the gateway judges them: one reading of a call's
arguments (flattened paths, path prefixes, URL/e-mail domains) and the check of a value against
an `ArgumentRule` learnt from the APD.

Why in the core: the profiler derives the rules (it owns the argument profiles) and the MCP gateway
applies them from the policy bundle; neither may import the other, and a rule read one way by the
learner and another way by the enforcer would refuse what the baseline allowed (or the reverse).
Pure functions, no I/O. Values never leave this module: a violation names the check, not the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from runward.core.contracts.enforcement import ArgumentRule, ToolRule

_EMAIL = re.compile(r"^[^@\s]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)
MAX_ITEMS = 50  # list items judged per list (as the profiler learns them)


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(argument path, scalar) pairs: nested objects as `a.b`, list items under `a[]`."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for inner in value[:MAX_ITEMS]:
            yield from flatten(inner, f"{prefix}[]")
    else:
        yield prefix or "value", value


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return "string"


def path_prefix(text: str) -> str | None:
    """The first two components of an absolute path (`/srv/data`), the first of a relative one."""
    if not text.startswith(("/", "~/", "./", "../")) or _URL.match(text):
        return None
    parts = [p for p in text.split("/") if p]
    return "/" + "/".join(parts[:2]) if text.startswith("/") else parts[0]


def domain(text: str) -> str | None:
    """The domain of an e-mail address or the host of a URL, lower-cased; None for anything else."""
    email = _EMAIL.match(text)
    if email:
        return email.group(1).lower()
    if _URL.match(text):
        return (urlsplit(text).hostname or "").lower() or None
    return None


def violations(rule: ArgumentRule, value: Any) -> list[str]:
    """What about `value` the rule does not allow: check names with the learnt bound, never the value."""
    kind = json_type(value)
    if rule.types and kind not in rule.types:
        return [f"type {kind} (learnt {', '.join(rule.types)})"]
    found: list[str] = []
    if kind == "number":
        number = float(value)
        if rule.min_value is not None and number < rule.min_value:
            found.append(f"below the learnt minimum {rule.min_value:g}")
        if rule.max_value is not None and number > rule.max_value:
            found.append(f"above the learnt maximum {rule.max_value:g}")
    if not isinstance(value, str):
        return found
    if rule.max_length is not None and len(value) > rule.max_length:
        found.append(f"length {len(value)} over the learnt {rule.max_length}")
    prefix, host = path_prefix(value), domain(value)
    if rule.values is not None and not (prefix or host) and value not in rule.values:
        found.append(f"not one of the {len(rule.values)} learnt values")
    if prefix and rule.path_prefixes and prefix not in rule.path_prefixes:
        found.append(f"path outside the learnt prefixes {', '.join(rule.path_prefixes)}")
    if host and host not in rule.domains:
        found.append("domain never seen" + (f" (learnt {', '.join(rule.domains)})" if rule.domains else ""))
    return found


def call_violations(rule: ToolRule, arguments: dict[str, Any] | None) -> list[str]:
    """Every argument of a call the tool's rule does not allow, as `argument: why`.

    A tool whose rule has no arguments (learnt without content, or never called with any) is not
    judged on its arguments; one with learnt arguments refuses an argument it never saw.
    """
    if not rule.arguments:
        return []
    found: list[str] = []
    for name, value in flatten(arguments or {}):
        learnt = rule.arguments.get(name)
        if learnt is None:
            found.append(f"{name}: an argument never seen in observation")
            continue
        found += [f"{name}: {why}" for why in violations(learnt, value)]
    return found
