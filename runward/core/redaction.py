"""Secrets never leave the node: prompts, tool arguments and results, argv and audit objects may
carry credentials, and every producer and ingest redact them before anything is published or stored.

Three layers, applied in this order:
1. Structure: values under secret-named keys (`password`, `pw`, `client_secret`, `api_key`...),
   `NAME=value` / `name: value` assignments with such names, URL userinfo passwords, argv flags
   (`--password X`, `--token=X`, mysql `-pX`, `PGPASSWORD=X`), whole private-key blocks (PEM,
   OpenSSH, PGP, PuTTY; an unterminated block is redacted to the end of the string).
2. Known formats: the vendor-prefixed rules of Yelp's detect-secrets (the PyPI package
   `detect-secrets`, Apache-2.0, loaded from the installed package so its updates apply), plus
   Runward's own rules for formats detect-secrets lacks (GitHub fine-grained, Google, Stripe
   test/restricted, Anthropic, Hugging Face, Vault, Shopify...), written from each vendor's
   documented token format.
3. High entropy: a run of 20+ base64url characters mixing upper case, lower case and digits
   whose Shannon entropy is at least 4 bits per character.

Deliberately kept (see tests/unit/test_redaction_corpus.py): hexadecimal strings (sha256 image
digests, git SHAs, OTel trace/span ids are evidence, not secrets; a hex secret is caught by its
key or flag instead), UUIDs, paths, hostnames, ordinary words and identifiers.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

REDACTED = "[REDACTED]"

# Words that make a key, variable or flag name secret-bearing. `token` but not `tokens`
# (`max_tokens`, `input_tokens` are model parameters, not credentials).
_SECRET_WORDS = (
    r"passwords?|passwd|pwd|pw|pass|passphrase|secrets?|token|apikey|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|secret[_-]?key|credentials?|auth|auth[_-]?token|session[_-]?token|client[_-]?secret"
)
# A single word ending like this is secret-bearing too: PGPASSWORD, MYSQLPWD, GHTOKEN.
_SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "apikey", "passphrase")
_NAME_PART = re.compile(rf"(?i)^(?:{_SECRET_WORDS})$")
_COMPOUND = re.compile(rf"(?i)(?:{_SECRET_WORDS})")


def secret_name(name: str) -> bool:
    """Whether a key/variable/flag name holds a secret: `pw`, `db_password`, `AWS_SECRET_ACCESS_KEY`,
    `clientSecret`, `x-api-key`; not `max_tokens`, `password_policy_url`-style descriptions."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    parts = [p for p in re.split(r"[^a-z0-9]+", words) if p]
    if not parts or parts[-1] in {"url", "file", "path", "policy", "length", "count", "hint", "id", "type", "name"}:
        return False
    joined = "_".join(parts)
    if any(_NAME_PART.match(p) or p.endswith(_SECRET_SUFFIXES) for p in parts):
        return True
    return bool(
        re.search(r"(?:^|_)(?:api_key|access_key|secret_key|private_key|client_secret|auth_token)(?:_|$)", joined)
    )


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    group: int = 0  # the group holding the secret (0: the whole match)


# A rule may not start inside a run of token characters: real tokens are delimited, and without
# this a hostile run ("eyJeyJeyJ...") makes every position a start and the scan quadratic.
_TOKEN_START = r"(?<![A-Za-z0-9_-])"


def _anchored(pattern: re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(_TOKEN_START + "(?:" + pattern.pattern + ")", pattern.flags)


_KEY_CHARS = r"[A-Za-z0-9_.-]"
# The key is a whole run of name characters (the lookbehind stops a match starting mid-run, which
# keeps this linear on long identifiers); whether it names a secret is decided by secret_name().
_ASSIGNMENT = re.compile(
    rf"(?<![A-Za-z0-9_.-])(?P<key>[\"']?{_KEY_CHARS}+[\"']?)"
    r"(?P<sep>[ \t]*(?::=|[:=])[ \t]*|[ \t]+is[ \t]+)"
    r"(?=(?P<value>\"[^\"\n]{0,512}\"|'[^'\n]{0,512}'|[^\s,;\"'}\]]{1,512}))",
)
_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.-])([a-zA-Z][a-zA-Z0-9+.-]{0,30}://[^\s:/?#@\[\]]{0,256}):([^\s@/?#]{1,256})@"
)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*\Z)"
    r"|PuTTY-User-Key-File-\d:.*?(?:Private-MAC:\s*[0-9a-f]+|\Z)",
    re.S,
)

# Formats detect-secrets 1.5 does not know, each from the vendor's documented token format.
_OWN_RULES: tuple[_Rule, ...] = tuple(
    _Rule(kind, _anchored(re.compile(pattern)))
    for kind, pattern in (
        ("github_token", r"\bgithub_pat_[A-Za-z0-9_]{50,}"),
        ("github_token", r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
        ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}"),
        ("google_oauth", r"\bGOCSPX-[0-9A-Za-z_-]{20,}"),
        ("google_oauth", r"\bya29\.[0-9A-Za-z_-]{20,}"),
        ("stripe_key", r"\b(?:sk|rk)_(?:live|test)_[0-9a-zA-Z]{16,}"),
        ("stripe_key", r"\bwhsec_[0-9a-zA-Z]{24,}"),
        ("openai_key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
        ("anthropic_key", r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{20,}"),
        ("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}"),
        ("slack_token", r"\bxox[abprse]-[A-Za-z0-9-]{10,}"),
        ("slack_token", r"\bxapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+"),
        ("npm_token", r"\bnpm_[A-Za-z0-9]{36}"),
        ("pypi_token", r"\bpypi-[A-Za-z0-9_-]{50,}"),
        ("vault_token", r"\bhv[sbr]\.[A-Za-z0-9_-]{24,}"),
        ("shopify_token", r"\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}"),
        ("digitalocean_token", r"\bdo[por]_v1_[a-f0-9]{64}"),
        ("databricks_token", r"\bdapi[a-f0-9]{32}(?:-\d)?"),
        ("age_secret_key", r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}"),
        ("linear_key", r"\blin_api_[A-Za-z0-9]{40}"),
        ("postman_key", r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
        ("newrelic_key", r"\bNRAK-[A-Z0-9]{27}"),
        ("grafana_token", r"\bgl(?:c|sa)_[A-Za-z0-9+/=_]{32,}"),
        ("doppler_token", r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}"),
        ("alibaba_key", r"\bLTAI[A-Za-z0-9]{20}"),
        ("atlassian_token", r"\bATATT3[A-Za-z0-9_=-]{50,}"),
        ("sendgrid_key", r"\bSG\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}"),
        ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        ("aws_access_key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    )
)
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)(\s+)([A-Za-z0-9._~+/=-]{8,})")


def _detect_secrets_rules() -> tuple[_Rule, ...]:
    """Every vendor-prefixed (regex) rule of the installed detect-secrets, except the ones that
    are not secrets here (public IPs are evidence) or are handled whole above (private keys)."""
    import importlib
    import inspect
    import pkgutil

    import detect_secrets.plugins as plugins
    from detect_secrets.plugins.base import RegexBasedDetector

    # npm: its `//.+/:_authToken` backtracks quadratically on long lines; npm_ tokens and
    # `_authToken=` assignments are covered above.
    skipped = {"ip_public", "private_key", "basic_auth", "npm", "base", "keyword", "high_entropy_strings"}
    rules: list[_Rule] = []
    for module_info in pkgutil.iter_modules(plugins.__path__):
        if module_info.name in skipped:
            continue
        module = importlib.import_module(f"{plugins.__name__}.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, RegexBasedDetector)
                and cls is not RegexBasedDetector
                and cls.__module__ == module.__name__
            ):
                kind = "detect_secrets:" + re.sub(r"[^a-z0-9]+", "_", str(cls.secret_type).lower()).strip("_")
                rules += [_Rule(kind, _anchored(pattern)) for pattern in cls().denylist]
    return tuple(rules)


_VENDOR_RULES = _OWN_RULES + _detect_secrets_rules()

_CANDIDATE = re.compile(r"(?<![A-Za-z0-9_+=-])[A-Za-z0-9_+=-]{20,}(?![A-Za-z0-9_+=-])")
_HEX_OR_UUID = re.compile(r"^(?:[0-9a-fA-F-]+)$")
ENTROPY_BITS = 4.0


def high_entropy(word: str) -> bool:
    if _HEX_OR_UUID.match(word) or REDACTED.strip("[]") in word:
        return False
    if not (re.search(r"[A-Z]", word) and re.search(r"[a-z]", word) and len(re.findall(r"\d", word)) >= 2):
        return False
    counts = Counter(word)
    entropy = -sum(n / len(word) * math.log2(n / len(word)) for n in counts.values())
    return entropy >= ENTROPY_BITS


def _sub(pattern: re.Pattern[str], text: str, repl: Callable[[re.Match[str]], str]) -> tuple[str, int]:
    return pattern.subn(repl, text)


def _trimmed(match: re.Match[str], group: int) -> str:
    """Replace the secret but keep the delimiters a rule matched around it (spaces, quotes, =)."""
    whole, start, end = match.group(0), match.start(group) - match.start(0), match.end(group) - match.start(0)
    while start < end and whole[start] in " \t\r\n\"'=:":
        start += 1
    while end > start and whole[end - 1] in " \t\r\n\"'":
        end -= 1
    return whole[:start] + REDACTED + whole[end:]


def _assignment_value(match: re.Match[str]) -> bool:
    """Whether this `key<sep>value` assigns a secret (and not a number, flag or placeholder)."""
    value = match.group("value")
    bare = value.strip("\"'")
    if not secret_name(match.group("key").strip("\"'")) or not bare or bare == REDACTED:
        return False
    if re.fullmatch(r"-?\d{1,6}|true|false|null|none|\*+", bare, re.I) or bare.startswith(("<", "${", "$(", "{{")):
        return False  # numbers, booleans, masks, placeholders, references to env vars
    return not (match.group("sep").strip() == "is" and bare.isalpha())  # "the password is required"


_VALUE_END = frozenset(" \t\r\n\f\v,;\"'}]")


def _redact_assignments(text: str) -> str:
    """The value is matched in a lookahead so `note: password=x` is still seen after `note:`."""
    out, last = [], 0
    for match in _ASSIGNMENT.finditer(text):
        start, end = match.span("value")
        if start < last or not _assignment_value(match):
            continue
        value = match.group("value")
        quote = value[0] if value[0] in "\"'" and value.endswith(value[0]) and len(value) > 1 else ""
        if not quote:  # the lookahead is bounded (linear scans); a longer value is redacted whole
            while end < len(text) and text[end] not in _VALUE_END:
                end += 1
        out += [text[last:start], f"{quote}{REDACTED}{quote}"]
        last = end
    return "".join(out) + text[last:] if out else text


def redact_text(text: str) -> tuple[str, list[str]]:
    """Return the text with secrets replaced, and the kinds of secret found."""
    found: list[str] = []

    def apply(kind: str, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> None:
        nonlocal text
        new = pattern.sub(repl, text)
        if new != text:
            found.append(kind)
            text = new

    apply("private_key", _PRIVATE_KEY, lambda m: REDACTED)
    apply("url_password", _URL_PASSWORD, lambda m: f"{m.group(1)}:{REDACTED}@")
    redacted = _redact_assignments(text)
    if redacted != text:
        found.append("assignment")
        text = redacted
    apply("bearer", _BEARER, lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}")
    for rule in _VENDOR_RULES:
        apply(rule.kind, rule.pattern, functools.partial(_trimmed, group=rule.group))
    apply("high_entropy", _CANDIDATE, lambda m: REDACTED if high_entropy(m.group(0)) else m.group(0))
    return text, sorted(set(found))


def redact_value(value: Any) -> tuple[Any, list[str]]:
    """Redact every string inside a JSON-like value (tool arguments, results, audit objects);
    a string or number under a secret-named key is replaced whole."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        items = [redact_value(v) for v in value]
        return [v for v, _ in items], sorted({k for _, ks in items for k in ks})
    if isinstance(value, dict):
        found: set[str] = set()
        out: dict[str, Any] = {}
        for key, inner in value.items():
            if (
                secret_name(str(key))
                and isinstance(inner, str | int | float)
                and not isinstance(inner, bool)
                and inner != ""
            ):
                out[key] = REDACTED
                found.add("named_field")
                continue
            out[key], kinds = redact_value(inner)
            found.update(kinds)
        return out, sorted(found)
    return value, []


# Flags whose next argument (or `=value`) is a secret, whatever the program.
_SECRET_FLAG = re.compile(rf"^(?:--(?:[a-z0-9]+[_-])*(?:{_SECRET_WORDS})|-(?:{_SECRET_WORDS}))$", re.I)
# Programs where `-pVALUE` (attached) is a password, not a port or a path.
_ATTACHED_P = {"mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlshow", "mysqlcheck", "mariadb", "mariadb-dump"}
# Programs where `-p VALUE` (separate) is a password; registry clients only in `login`.
_SEPARATE_P = {"sshpass"}
_LOGIN_P = {"docker", "podman", "nerdctl", "buildah", "skopeo", "helm", "oras", "crane"}


def redact_argv(argv: Iterable[str]) -> tuple[list[str], list[str]]:
    """Redact a process's argv: values of secret flags (`--password X`, `--token=X`), mysql's
    `-pX`, sshpass's `-p X`, `NAME=value` environment assignments with a secret name
    (`PGPASSWORD=...`), and anything redact_text finds in each argument."""
    args = list(argv)
    program = args[0].rsplit("/", 1)[-1] if args else ""
    separate_p = program in _SEPARATE_P or (program in _LOGIN_P and "login" in args)
    out: list[str] = []
    found: set[str] = set()
    take_next = False
    for index, arg in enumerate(args):
        if take_next:
            out.append(REDACTED)
            found.add("argv_flag")
            take_next = False
            continue
        flag, eq, value = arg.partition("=")
        if program in _ATTACHED_P and re.fullmatch(r"-p.+", arg):
            out.append(f"-p{REDACTED}")
            found.add("argv_flag")
            continue
        if index and _SECRET_FLAG.match(flag):
            if eq:
                out.append(f"{flag}={REDACTED}" if value else arg)
                found.add("argv_flag")
            else:
                out.append(arg)
                take_next = index + 1 < len(args) and not args[index + 1].startswith("-")
            continue
        if separate_p and arg == "-p":
            out.append(arg)
            take_next = index + 1 < len(args)
            continue
        if eq and value and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", flag) and secret_name(flag):
            out.append(f"{flag}={REDACTED}")
            found.add("env_assignment")
            continue
        clean, kinds = redact_text(arg)
        out.append(clean)
        found.update(kinds)
    return out, sorted(found)


def redact_audit_event(event: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A Kubernetes audit Event with the objects it carries redacted: every value of a Secret's
    `data`/`stringData`, and whatever redact_value finds in request and response objects."""
    out = dict(event)
    found: set[str] = set()
    for field in ("requestObject", "responseObject"):
        body = out.get(field)
        if not isinstance(body, dict):
            continue
        body = _secret_object(body, found)
        out[field], kinds = redact_value(body)
        found.update(kinds)
    annotations = out.get("annotations")
    if isinstance(annotations, dict):
        out["annotations"], kinds = redact_value(annotations)
        found.update(kinds)
    return out, sorted(found)


def _secret_object(body: dict[str, Any], found: set[str]) -> dict[str, Any]:
    kind = body.get("kind")
    if not isinstance(kind, str):
        return body
    if kind == "Secret":
        body = dict(body)
        for part in ("data", "stringData"):
            if isinstance(body.get(part), dict):
                body[part] = {k: REDACTED for k in body[part]}
                found.add("k8s_secret")
        return body
    if kind in {"SecretList", "List"} and isinstance(body.get("items"), list):
        return {**body, "items": [_secret_object(i, found) if isinstance(i, dict) else i for i in body["items"]]}
    return body
