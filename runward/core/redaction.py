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

Speed without skipping a secret (tests/unit/test_redaction_prefilter.py): a step runs only on a
text that can hold its pattern's match (as long as its shortest match, with a literal of each
group its parsed pattern needs), and results are memoised by a keyed digest of the text, never
the text itself (DigestMemo).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from re import _constants as _sre  # type: ignore[attr-defined]
from re import _parser as _sre_parse  # type: ignore[attr-defined]
from typing import Any, Generic, TypeVar

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
class _Needs:
    """What a text must hold for a pattern to match anywhere in it, checked before the pattern
    runs: at least `min_len` characters and, for each group, one of its literals. A necessary
    condition derived from the parsed pattern (never a sufficient one), so skipping a pattern
    whose needs fail cannot skip a secret; each pattern still runs alone, with its own
    literal-prefix search (one combined alternation was slower)."""

    min_len: int
    groups: tuple[tuple[str, ...], ...]
    folded: bool  # the pattern ignores case somewhere: lower-case literals, looked up in `_lowered(text)`
    cased: bool = False  # changes only text with an upper-case letter (one that lowering changes)

    def may_match(self, text: str, lowered: str) -> bool:
        if len(text) < self.min_len or (self.cased and lowered == text):
            return False
        if self.folded:
            text = lowered
        for group in self.groups:
            for literal in group:
                if literal in text:
                    break
            else:
                return False
        return True


_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT)


def _literal_groups(items: Any) -> list[frozenset[str]]:
    """Groups of literals a match of this parsed (sub)pattern contains, one of each group."""
    groups: list[frozenset[str]] = []
    run: list[str] = []
    for op, av in items:
        if op is _sre.LITERAL:
            run.append(chr(av))
            continue
        if op is _sre.AT:  # zero width (^, \b): the characters around it are still adjacent
            continue
        if run:
            groups.append(frozenset({"".join(run)}))
            run = []
        if op is _sre.SUBPATTERN:
            groups += _literal_groups(av[3])
        elif op is _sre.ATOMIC_GROUP:
            groups += _literal_groups(av)
        elif op in _REPEATS and av[0] >= 1:
            groups += _literal_groups(av[2])
        elif op is _sre.BRANCH:
            options = [_best(_literal_groups(branch)) for branch in av[1]]
            known = [option for option in options if option is not None]
            if len(known) == len(options):  # each branch pins a literal: the match holds one of them
                groups.append(frozenset().union(*known))
        elif op is _sre.IN and all(item is _sre.LITERAL for item, _ in av):  # [:=]: one of these
            groups.append(frozenset(chr(c) for _, c in av))
        # Anything else (a range or category, a negated literal, a lookaround, `.`) pins no literal.
    if run:
        groups.append(frozenset({"".join(run)}))
    return groups


def _rank(group: frozenset[str]) -> tuple[int, int]:
    return -min(len(literal) for literal in group), len(group)  # longer, fewer literals first


def _best(groups: list[frozenset[str]]) -> frozenset[str] | None:
    return min(groups, key=_rank) if groups else None


def _needs(pattern: re.Pattern[str], also: Iterable[frozenset[str]] = ()) -> _Needs:
    """The pattern's needs; `also`: groups of literals known to be needed otherwise (folded)."""
    parsed = _sre_parse.parse(pattern.pattern, pattern.flags)
    groups = [*_literal_groups(parsed), *also]
    folded = (
        bool(also)
        or bool(parsed.state.flags & re.IGNORECASE)
        or any(op is _sre.SUBPATTERN and av[1] & re.IGNORECASE for op, av in _walk(parsed))
    )
    if folded:  # re matches non-ASCII letters to ASCII ones only where _lowered folds them too
        groups = [frozenset(g.lower() for g in group) for group in groups if all(g.isascii() for g in group)]
    best = sorted({_minimal(group) for group in groups}, key=_rank)[:2]  # a third prunes next to nothing
    return _Needs(int(parsed.getwidth()[0]), tuple(tuple(sorted(g)) for g in best), folded)


def _minimal(group: frozenset[str]) -> frozenset[str]:
    """The group without literals that hold another of it ("password" holds "pass"): same test, fewer scans."""
    return frozenset(a for a in group if not any(b != a and b in a for b in group))


# The only characters outside ASCII that re's IGNORECASE matches to ASCII ones (İ ı ſ K), and
# U+0130 is also the only one whose str.lower() is two characters: mapped first, the lowered
# text holds every ASCII literal an IGNORECASE pattern can match, at the same place.
_RE_FOLDS = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}
_RE_FOLD_TABLE = str.maketrans(_RE_FOLDS)


def _lowered(text: str) -> str:
    if not text.isascii() and any(c in text for c in _RE_FOLDS):
        text = text.translate(_RE_FOLD_TABLE)
    return text.lower()


def _walk(items: Any) -> Iterable[tuple[Any, Any]]:
    for op, av in items:
        yield op, av
        if op is _sre.SUBPATTERN:
            yield from _walk(av[3])
        elif op is _sre.ATOMIC_GROUP or op in (_sre.ASSERT, _sre.ASSERT_NOT):
            yield from _walk(av if op is _sre.ATOMIC_GROUP else av[1])
        elif op in _REPEATS:
            yield from _walk(av[2])
        elif op is _sre.BRANCH:
            for branch in av[1]:
                yield from _walk(branch)
        elif op is _sre.GROUPREF_EXISTS:
            yield from _walk(av[1])
            if av[2] is not None:
                yield from _walk(av[2])


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


@dataclass(frozen=True)
class _Step:
    """One redaction step: `apply` changes only what `pattern` matches, so `needs` (the pattern's)
    tells which texts it cannot change."""

    kind: str
    pattern: re.Pattern[str]
    apply: Callable[[str], str]
    needs: _Needs


def _step(kind: str, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> _Step:
    return _Step(kind, pattern, functools.partial(pattern.sub, repl), _needs(pattern))


# In this order: structure first, then the vendor formats, then high entropy.
_STEPS: tuple[_Step, ...] = (
    _step("private_key", _PRIVATE_KEY, lambda m: REDACTED),
    _step("url_password", _URL_PASSWORD, lambda m: f"{m.group(1)}:{REDACTED}@"),
    # An assignment is redacted only under a secret name (secret_name), and every such name holds
    # a secret word (tests/unit/test_redaction_prefilter.py): one of them must be in the text.
    _Step(
        "assignment", _ASSIGNMENT, _redact_assignments, _needs(_ASSIGNMENT, [frozenset(_needs(_COMPOUND).groups[0])])
    ),
    _step("bearer", _BEARER, lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}"),
    *(_step(rule.kind, rule.pattern, functools.partial(_trimmed, group=rule.group)) for rule in _VENDOR_RULES),
    # high_entropy() wants an upper-case letter in the word.
    _Step(
        "high_entropy",
        _CANDIDATE,
        functools.partial(_CANDIDATE.sub, lambda m: REDACTED if high_entropy(m.group(0)) else m.group(0)),
        dataclasses.replace(_needs(_CANDIDATE), cased=True),
    ),
)


def redact_text_unfiltered(text: str) -> tuple[str, list[str]]:
    """`redact_text` with every step run on every text, no memo: the reference the prefilter is
    tested against (tests/unit/test_redaction_prefilter.py)."""
    return _redact(text, prefilter=False)


# The steps a text of each length can need (index, step), in order: a short text skips most
# formats without a look at them.
_LONGEST_NEED = max(step.needs.min_len for step in _STEPS)
_BY_LENGTH = tuple(
    tuple((i, step) for i, step in enumerate(_STEPS) if step.needs.min_len <= n) for n in range(_LONGEST_NEED + 1)
)
_ALL_STEPS = tuple(enumerate(_STEPS))


def _redact(text: str, prefilter: bool) -> tuple[str, list[str]]:
    found: list[str] = []
    lowered = _lowered(text) if prefilter else ""
    start = 0
    while True:
        steps = _BY_LENGTH[min(len(text), _LONGEST_NEED)] if prefilter else _ALL_STEPS
        for index, step in steps:
            if index < start or (prefilter and not step.needs.may_match(text, lowered)):
                continue
            new = step.apply(text)
            if new != text:
                found.append(step.kind)
                text, start = new, index + 1
                break  # go on with the new text's length and literals ("[REDACTED]" may bring some)
        else:
            return text, sorted(set(found))


V = TypeVar("V")


class DigestMemo(Generic[V]):
    """Results of a costly pure function of a text (redaction, an injection verdict) by a keyed
    digest of the text: prompts repeat (system prompts, a chat's history re-sent on every turn)
    and a long one costs milliseconds to scan.

    It holds no text it was given, not even as a key: the key is a BLAKE2b digest keyed with a
    random per-process secret (so a digest cannot be checked against guessed secrets off this
    process), and a value must hold no unredacted text (redacted text, a verdict). Bounded in
    entries and in the summed `size` of the values; least recently used first out. Thread-safe:
    the edges redact from threads.
    """

    def __init__(self, max_entries: int, max_size: int, size: Callable[[V], int] = lambda _: 1) -> None:
        self.max_entries, self.max_size, self._size_of = max_entries, max_size, size
        self._key = os.urandom(hashlib.blake2b.MAX_KEY_SIZE)
        self._items: OrderedDict[bytes, V] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def digest(self, text: str, context: str = "") -> bytes:
        """The key of `text` (with a `context` the result also depends on, such as the agent)."""
        # surrogatepass: a lone surrogate encodes to its own bytes, so distinct texts never share a
        # key; the text's length first, so no two (text, context) pairs do.
        data = text.encode("utf-8", "surrogatepass")
        data = len(data).to_bytes(8, "big") + data + context.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(data, digest_size=32, key=self._key).digest()

    def get(self, digest: bytes) -> V | None:
        with self._lock:
            hit = self._items.get(digest)
            if hit is not None:
                self._items.move_to_end(digest)
            return hit

    def put(self, digest: bytes, value: V) -> None:
        size = self._size_of(value)
        if size > self.max_size // 16 or not self.max_entries:
            return  # one huge value would evict everything else
        with self._lock:
            if digest in self._items:
                return
            self._items[digest] = value
            self._size += size
            while len(self._items) > self.max_entries or self._size > self.max_size:
                _, old = self._items.popitem(last=False)
                self._size -= self._size_of(old)

    def values(self) -> list[V]:
        """What the memo holds besides digests (for the tests that it keeps no unredacted text)."""
        with self._lock:
            return list(self._items.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0


_MEMO: DigestMemo[tuple[str, tuple[str, ...]]] = DigestMemo(4096, 4_000_000, lambda v: len(v[0]))


def redact_text(text: str) -> tuple[str, list[str]]:
    """Return the text with secrets replaced, and the kinds of secret found."""
    digest = _MEMO.digest(text)
    hit = _MEMO.get(digest)
    if hit is not None:
        return hit[0], list(hit[1])
    redacted, found = _redact(text, prefilter=True)
    _MEMO.put(digest, (redacted, tuple(found)))
    return redacted, found


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
