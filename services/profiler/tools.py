"""The tool-invocation surface of an APD: argument profiles per tool and argument, and the
agent's tool-sequence and volume model.

Both are learnt from `execute_tool` events during the observation window and frozen after it:
a call whose argument leaves its learnt profile (a type, shape, length or numeric range never
seen, a value outside an enum-like set, a new path prefix or URL/e-mail domain), a transition
between tools never seen, a burst over the learnt rate, or a read-heavy burst followed by a
send/write to a new destination is a tool-surface signal. Bounds are robust (quantiles widened
by the inter-quantile spread), never exact matches. Signals name the tool and the argument and
never carry the argument's value. Pure logic: the profiler keeps `ToolProfile` in the APD state.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from runward.core import techniques
from runward.core.contracts import ArgumentRule, EnrichedEvent, LlmCallInfo, Signal, Surface, Technique, ToolCall
from runward.core.tool_arguments import domain as _domain
from runward.core.tool_arguments import flatten as _flatten
from runward.core.tool_arguments import json_type as _type
from runward.core.tool_arguments import path_prefix as _path_prefix

SAMPLES = 256  # numeric values and lengths kept per argument (the window's most recent)
ENUM_MAX = 12  # at most this many distinct values makes an argument enum-like...
ENUM_MIN_CALLS = 8  # ...once it was seen at least this often (so values repeat)
# ...and its values did repeat: on average each seen this many times. An id that is new on every
# call (order numbers, ticket ids) is never an enum, however few calls the window saw.
ENUM_REPEATS = 2
MIN_CALLS = 5  # an argument seen fewer times in the window is not judged
BURST_SPAN = timedelta(seconds=60)
BURST_FLOOR = 10  # a burst is over max(this, 3x the window's busiest minute)
READ_BURST = 10  # this many reads in EXFIL_SPAN, then a send to a new destination
EXFIL_SPAN = timedelta(minutes=5)
# Consecutive calls further apart than this are two sessions: no transition between them.
SESSION_GAP = timedelta(minutes=10)
_SEND = re.compile(r"send|mail|post|upload|publish|webhook|notify|share|transfer|export_to|http", re.I)
_READ = re.compile(r"read|get|list|search|query|fetch|export|download|select|find|lookup|dump", re.I)
_SYMBOLS = re.compile(r"['\";`|&$<>\\]|--|/\*")


class ArgProfile(BaseModel):
    calls: int = 0
    types: list[str] = Field(default_factory=list)
    shapes: list[str] = Field(default_factory=list)
    numbers: list[float] = Field(default_factory=list)
    lengths: list[int] = Field(default_factory=list)
    values: list[str] | None = Field(default_factory=list, description="distinct values while enum-like, else None")
    path_prefixes: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)


class ToolProfile(BaseModel):
    """Argument profiles by `server/tool` and argument name, and the sequence/volume model."""

    arguments: dict[str, dict[str, ArgProfile]] = Field(default_factory=dict)
    transitions: dict[str, int] = Field(default_factory=dict, description="`a -> b` per consecutive pair of calls")
    busiest_minute: int = 0
    destinations: list[str] = Field(default_factory=list, description="domains sends went to in the window")
    recent: list[tuple[datetime, str]] = Field(default_factory=list, description="calls of the last EXFIL_SPAN")
    last_tool: str | None = None
    last_tool_at: datetime | None = Field(default=None, description="event time of last_tool")


def fold_tools(profile: ToolProfile, event: EnrichedEvent, frozen: bool) -> list[Signal]:
    """Learn one tool call into `profile` (during the window) or judge it (after); the signals.

    `profile` is the fold's own copy (`apd._own`), but its lists, dicts and argument profiles
    are still the given state's: what changes is replaced, never changed in place, and only
    the argument profiles this call teaches are copied.
    """
    call = event.detail
    if not isinstance(call, LlmCallInfo) or not isinstance(event.behaviour, ToolCall):
        return []
    # A redelivered call never gets here: `apd.fold` folds each delivery once.
    tool = event.behaviour.key.removeprefix(f"{ToolCall.PREFIX}:")
    arguments = call.tool_arguments or {}
    if call.refused:
        # The gateway refused it: attempted, never run. Never learnt (a refusal would otherwise
        # teach the baseline what it refused); after the window its arguments are still judged.
        return _argument_signals(profile, event, tool, arguments) if frozen else []
    signals: list[Signal] = []
    if frozen:
        signals += _argument_signals(profile, event, tool, arguments)
        signals += _sequence_signals(profile, event, tool, arguments)
    else:
        flat = list(_flatten(arguments))
        if flat:  # a call without arguments does not make the tool's argument profile
            learnt = dict(profile.arguments.get(tool, {}))
            for name, value in flat:
                arg = learnt.get(name)
                learnt[name] = arg = arg.model_copy() if arg is not None else ArgProfile()
                _learn(arg, value)
            profile.arguments = {**profile.arguments, tool: learnt}
        before = _predecessor(profile, event)
        if before is not None:
            pair = f"{before} -> {tool}"
            profile.transitions = {**profile.transitions, pair: profile.transitions.get(pair, 0) + 1}
        if _SEND.search(tool):
            profile.destinations = sorted({*profile.destinations, *_destinations(arguments)})
    profile.recent = [*_calls_within(profile, event.ts, EXFIL_SPAN), (event.ts, tool)]
    if not frozen:
        per_minute = len(_calls_within(profile, event.ts, BURST_SPAN))
        profile.busiest_minute = max(profile.busiest_minute, per_minute)
    if profile.last_tool_at is None or event.ts >= profile.last_tool_at:
        profile.last_tool, profile.last_tool_at = tool, event.ts
    return signals


def _since(now: datetime, span: timedelta) -> datetime | None:
    """The bound that `t > bound` compares with for `now - t < span`: the same test, exactly (both
    are integer microseconds), with one subtraction instead of one per call of the last five
    minutes (issue 14). None when `now` is within `span` of the first representable time: every
    `t` is then within it."""
    try:
        return now - span
    except OverflowError:
        return None


def _calls_within(profile: ToolProfile, now: datetime, span: timedelta) -> list[tuple[datetime, str]]:
    """The recent calls less than `span` before `now` (or after it), in their order."""
    bound = _since(now, span)
    return [call for call in profile.recent if bound is None or call[0] > bound]


def _predecessor(profile: ToolProfile, event: EnrichedEvent) -> str | None:
    """The call before this one in its session, by event time. None for a session's first call and
    for a call delivered after a later one: its place in the sequence is unknown (out-of-order
    delivery across partitions or collectors), so it makes no transition."""
    last_at = profile.last_tool_at
    if profile.last_tool is None or last_at is None or event.ts < last_at or event.ts - last_at > SESSION_GAP:
        return None
    return profile.last_tool


# --- argument profiles ---------------------------------------------------------------------------


def _shape(text: str) -> str:
    """A coarse character class: what an ID, a word, a sentence or an injection looks like."""
    if _SYMBOLS.search(text):
        return "symbols"
    if text.isdigit():
        return "digits"
    if re.fullmatch(r"[\w.:/@+-]*", text):
        return "token"
    return "text"


# A learnt shape admits the narrower ones: free text admits single tokens and digits, never
# the quote/semicolon/comment characters of an injected query or command.
_COVERS = {
    "digits": {"digits"},
    "token": {"digits", "token"},
    "text": {"digits", "token", "text"},
    "symbols": {"digits", "token", "text", "symbols"},
}


def _destinations(arguments: dict[str, Any]) -> set[str]:
    return {d for _, v in _flatten(arguments) if isinstance(v, str) and (d := _domain(v))}


def _learn(arg: ArgProfile, value: Any) -> None:
    arg.calls += 1
    kind = _type(value)
    arg.types = sorted({*arg.types, kind})
    if kind == "number":
        arg.numbers = [*arg.numbers, float(value)][-SAMPLES:]
    if not isinstance(value, str):
        return
    arg.lengths = [*arg.lengths, len(value)][-SAMPLES:]
    arg.shapes = sorted({*arg.shapes, _shape(value)})
    if arg.values is not None:
        distinct = sorted({*arg.values, value})
        arg.values = distinct if len(distinct) <= ENUM_MAX and len(value) <= 64 else None
    prefix, domain = _path_prefix(value), _domain(value)
    if prefix:
        arg.path_prefixes = sorted({*arg.path_prefixes, prefix})
    if domain:
        arg.domains = sorted({*arg.domains, domain})


def robust_bounds(samples: list[float]) -> tuple[float, float]:
    """[p5 - 3*spread, p95 + 3*spread], spread the p5..p95 range (at least 1 and 50% of p95's
    magnitude): a few outliers in the window neither fix the bounds nor make them exact."""
    ordered = sorted(samples)
    low, high = _quantile(ordered, 0.05), _quantile(ordered, 0.95)
    spread = max(high - low, 1.0, abs(high) * 0.5)
    return low - 3 * spread, high + 3 * spread


def argument_rules(profile: ToolProfile) -> dict[str, dict[str, ArgumentRule]]:
    """The learnt argument profiles as rules the gateway checks (runward.core.tool_arguments):
    the same robust bounds the tool signals use. An argument seen fewer than MIN_CALLS times is
    known but unconstrained; enum values only once they repeated, and never for paths or URLs."""
    rules: dict[str, dict[str, ArgumentRule]] = {}
    for tool, arguments in sorted(profile.arguments.items()):
        rules[tool] = {name: _rule(arg) for name, arg in sorted(arguments.items())}
    return rules


def _rule(arg: ArgProfile) -> ArgumentRule:
    if arg.calls < MIN_CALLS:
        return ArgumentRule()
    rule = ArgumentRule(types=list(arg.types), path_prefixes=list(arg.path_prefixes), domains=list(arg.domains))
    if arg.numbers:
        rule.min_value, rule.max_value = (round(b, 6) for b in robust_bounds(arg.numbers))
    if arg.lengths:
        rule.max_length = round(robust_bounds([float(n) for n in arg.lengths])[1])
    categorical = not (arg.path_prefixes or arg.domains)
    if categorical and arg.values is not None and arg.calls >= ENUM_MIN_CALLS:
        rule.values = list(arg.values)
    return rule


def _quantile(ordered: list[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def deviations(arg: ArgProfile, value: Any) -> list[tuple[str, dict[str, Any]]]:
    """What about `value` leaves the learnt profile: (check, learnt summary without the value)."""
    if arg.calls < MIN_CALLS:
        return []
    kind = _type(value)
    if kind not in arg.types:
        return [("type", {"learnt_types": arg.types, "observed_type": kind})]
    found: list[tuple[str, dict[str, Any]]] = []
    if kind == "number" and arg.numbers:
        low, high = robust_bounds(arg.numbers)
        if not low <= float(value) <= high:
            found.append(("numeric_range", {"learnt_range": [round(low, 3), round(high, 3)]}))
    if isinstance(value, str):
        found += _string_deviations(arg, value)
    return found


def _string_deviations(arg: ArgProfile, value: str) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    shape = _shape(value)
    if not any(shape in _COVERS[learnt] for learnt in arg.shapes):
        found.append(("shape", {"learnt_shapes": arg.shapes, "observed_shape": shape}))
    if arg.lengths:
        low, high = robust_bounds([float(n) for n in arg.lengths])
        if not max(low, 0) <= len(value) <= high:
            found.append(("length", {"learnt_length": [max(0, round(low)), round(high)]}))
    prefix, domain = _path_prefix(value), _domain(value)
    # Paths, URLs and addresses are judged by their prefix and domain, not as enum values.
    categorical = not (prefix or domain or arg.path_prefixes or arg.domains)
    values = arg.values or []
    enum_like = arg.values is not None and arg.calls >= max(ENUM_MIN_CALLS, ENUM_REPEATS * len(values))
    if categorical and enum_like and value not in values:
        found.append(("enum", {"learnt_distinct_values": len(values)}))
    if prefix and arg.path_prefixes and prefix not in arg.path_prefixes:
        found.append(("path_prefix", {"learnt_prefixes": arg.path_prefixes}))
    if domain and domain not in arg.domains:
        found.append(("domain", {"learnt_domains": arg.domains}))
    return found


def _argument_signals(profile: ToolProfile, event: EnrichedEvent, tool: str, arguments: dict[str, Any]) -> list[Signal]:
    learnt = profile.arguments.get(tool)
    if learnt is None:
        return []  # a tool never called in the window is the APD's own deviation
    signals = []
    for name, value in _flatten(arguments):
        arg = learnt.get(name)
        checks = deviations(arg, value) if arg else [("new_argument", {"learnt_arguments": sorted(learnt)})]
        if checks:
            signals.append(
                _signal(
                    event,
                    f"tool argument outside APD profile: {tool} {name} ({', '.join(c for c, _ in checks)})",
                    [techniques.TOOL_INVOCATION],
                    {"tool": tool, "argument": name, "checks": dict(checks), "value": "[REDACTED]"},
                    key=f"{tool}:{name}",
                )
            )
    return signals


# --- sequence and volume -------------------------------------------------------------------------


def _sequence_signals(profile: ToolProfile, event: EnrichedEvent, tool: str, arguments: dict[str, Any]) -> list[Signal]:
    signals = []
    before = _predecessor(profile, event)
    pair = f"{before} -> {tool}"
    if before is not None and profile.transitions and pair not in profile.transitions:
        signals.append(
            _signal(
                event,
                f"tool sequence outside APD profile: {pair}",
                [techniques.TOOL_INVOCATION],
                {"transition": pair, "learnt_transitions": len(profile.transitions)},
                key=f"transition:{pair}",
                severity=2,
            )
        )
    in_minute = 1 + len(_calls_within(profile, event.ts, BURST_SPAN))
    limit = max(BURST_FLOOR, 3 * profile.busiest_minute)
    if in_minute == limit + 1:  # once per burst, when it crosses the line
        signals.append(
            _signal(
                event,
                f"tool call burst: {in_minute} calls in {int(BURST_SPAN.total_seconds())} s",
                [techniques.TOOL_INVOCATION],
                {"calls": in_minute, "learnt_busiest_minute": profile.busiest_minute, "tool": tool},
                key="burst",
            )
        )
    signals += _exfiltration(profile, event, tool, arguments)
    return signals


def _exfiltration(profile: ToolProfile, event: EnrichedEvent, tool: str, arguments: dict[str, Any]) -> list[Signal]:
    """A read-heavy burst, then a send/write to a destination the window never sent to."""
    if not _SEND.search(tool):
        return []
    new = sorted(_destinations(arguments) - set(profile.destinations))
    reads = [t for _, t in _calls_within(profile, event.ts, EXFIL_SPAN) if _READ.search(t) and not _SEND.search(t)]
    if not new or len(reads) < READ_BURST:
        return []
    return [
        _signal(
            event,
            f"exfiltration via tool invocation: {len(reads)} reads then {tool} to a new destination",
            [techniques.EXFIL_VIA_TOOL],
            {
                "tool": tool,
                "reads": len(reads),
                "read_tools": sorted(set(reads)),
                "new_destinations": len(new),
                "destination": "[REDACTED]",
            },
            key=f"exfil:{tool}",
            severity=4,
        )
    ]


def _signal(
    event: EnrichedEvent,
    title: str,
    found: list[Technique],
    evidence: dict[str, Any],
    key: str,
    severity: int = 3,
) -> Signal:
    digest = hashlib.sha1(f"{event.deployment}|{event.event_id}|{key}".encode()).hexdigest()[:24]
    return Signal(
        signal_id=digest,
        deployment=event.deployment,
        ts=event.ts,
        surface=Surface.TOOL,
        title=title,
        behaviour=event.behaviour,
        techniques=found,
        severity=severity,
        evidence={**evidence, "source": event.source.model_dump()},
        source_event=event.event_id,
    )
