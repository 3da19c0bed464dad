"""Secrets never leave ingest: prompts and tool arguments may carry credentials."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "private_key",
        re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----.*?-----END (?:[A-Z]+ )?PRIVATE KEY-----", re.S),
    ),
    ("openai_key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("github_token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("slack_token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("bearer", re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")),
    (
        "assignment",
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|api[_-]?key|access[_-]?token|client[_-]?secret)"
            r"(\s*[:=]\s*|\s+is\s+)(\"[^\"]*\"|'[^']*'|[^\s,;]+)"
        ),
    ),
)


def redact_text(text: str) -> tuple[str, list[str]]:
    """Return the text with secrets replaced, and the kinds of secret found."""
    found: list[str] = []
    for kind, pattern in _PATTERNS:
        if kind == "bearer":
            text, n = pattern.subn(lambda m: f"{m.group(1)} {REDACTED}", text)
        elif kind == "assignment":
            text, n = pattern.subn(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        else:
            text, n = pattern.subn(REDACTED, text)
        if n:
            found.append(kind)
    return text, found


def redact_value(value: Any) -> tuple[Any, list[str]]:
    """Redact every string inside a JSON-like value (tool arguments, results)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        items = [redact_value(v) for v in value]
        return [v for v, _ in items], sorted({k for _, ks in items for k in ks})
    if isinstance(value, dict):
        found: set[str] = set()
        out: dict[str, Any] = {}
        for key, inner in value.items():
            if re.search(r"(?i)password|secret|token|api[_-]?key|credential", str(key)) and inner:
                out[key] = REDACTED
                found.add("named_field")
                continue
            out[key], kinds = redact_value(inner)
            found.update(kinds)
        return out, sorted(found)
    return value, []
