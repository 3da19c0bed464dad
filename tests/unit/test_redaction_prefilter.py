"""The redaction prefilter and memo change nothing but speed: `redact_text` (each step skipped
when its pattern's needed literals or length are missing, results memoised by digest) returns
exactly what every step run on every text returns (`redact_text_unfiltered`), and the memo holds
no unredacted text."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runward.core import redaction
from runward.core.redaction import REDACTED, redact_text, redact_text_unfiltered, secret_name
from tests.unit.test_redaction_corpus import BENIGN, SECRETS

STEPS = redaction._STEPS
# Characters re's IGNORECASE matches to ASCII letters, and text around tokens: separators, quotes,
# assignment signs, non-ASCII letters that fold and ones that do not.
FILLER = st.text(
    alphabet=st.sampled_from(list(" \t\n=:;,'\"@/._-+[](){}<>#?&") + list("aZ09kKsSiI") + list("İıſKéß€")),
    max_size=12,
)
FOLDED = {"s": "ſ", "S": "ſ", "k": "K", "K": "K", "i": "ı", "I": "İ"}


WORDS = st.sampled_from(
    ["password", "pw", "Passwd", "secret", "token", "api", "key", "Key", "auth", "client", "db", "user", "max"]
    + ["tokens", "url", "id", "private", "access", "session", "credentials", "PG", "MYSQL", "x"]
)
NAMES = st.builds(lambda parts, sep: sep.join(parts), st.lists(WORDS, min_size=1, max_size=4), st.sampled_from("_-."))
# `key<sep>value`: the assignment pattern's lookahead is beyond from_regex.
ASSIGNMENTS = st.builds(
    "".join,
    st.tuples(
        st.one_of(NAMES, NAMES.map(lambda n: f'"{n}"')),
        st.sampled_from(["=", ": ", " := ", " is ", ":"]),
        st.from_regex(r"[A-Za-z0-9!*${}<>-]{1,24}|\"[^\"\n]{0,24}\"", fullmatch=True),
    ),
)


def _tokens(index: int) -> st.SearchStrategy[str]:
    step = STEPS[index]
    return ASSIGNMENTS if step.kind == "assignment" else st.from_regex(step.pattern, fullmatch=True)


@st.composite
def _texts(draw: st.DrawFn) -> str:
    """One to three tokens of the steps' own patterns in random context, some with letters swapped
    for their case or for a non-ASCII letter IGNORECASE matches."""
    parts = [draw(FILLER)]
    for _ in range(draw(st.integers(1, 3))):
        token = draw(_tokens(draw(st.integers(0, len(STEPS) - 1))))
        mangle = draw(st.sampled_from(["keep", "upper", "lower", "swap", "fold"]))
        if mangle == "fold":
            token = "".join(FOLDED.get(c, c) if draw(st.booleans()) else c for c in token)
        elif mangle != "keep":
            token = getattr(token, mangle if mangle != "swap" else "swapcase")()
        parts += [token, draw(FILLER)]
    return "".join(parts)


def _same(text: str) -> None:
    redaction._MEMO.clear()
    expected = redact_text_unfiltered(text)
    assert redact_text(text) == expected, text
    assert redact_text(text) == expected, text  # from the memo


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_texts())
def test_the_prefilter_never_changes_what_is_redacted(text: str) -> None:
    _same(text)


@pytest.mark.parametrize("index", range(len(STEPS)), ids=[s.kind for s in STEPS])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_steps_own_tokens_are_redacted_as_without_the_prefilter(index: int, data: st.DataObject) -> None:
    token = data.draw(_tokens(index))
    _same(f"{data.draw(FILLER)}{token}{data.draw(FILLER)}")


@pytest.mark.parametrize(("name", "text", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_the_secret_corpus_is_redacted_as_without_the_prefilter(name: str, text: str, secret: str) -> None:
    _same(text)
    _same(text.upper())
    _same(f"note: {text}\n{text}")


@pytest.mark.parametrize("text", BENIGN)
def test_the_benign_corpus_is_unchanged_with_or_without_the_prefilter(text: str) -> None:
    _same(text)


def test_the_prefilter_skips_steps() -> None:
    """The point of it: a short prompt without vendor prefixes runs almost no step."""
    text = "summarise ticket 1234 for the customer"
    lowered = redaction._lowered(text)
    run = [s.kind for _, s in redaction._BY_LENGTH[len(text)] if s.needs.may_match(text, lowered)]
    assert run == [], run
    assert len(STEPS) > 60


@settings(max_examples=500, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=4), st.sampled_from(["_", "-", ".", "", "__"]))
def test_every_secret_name_holds_a_word_the_assignment_step_needs(parts: list[str], sep: str) -> None:
    name = sep.join(parts)
    if secret_name(name):
        stems = next(g for g in redaction._STEPS[2].needs.groups if "pass" in g)
        assert any(stem in redaction._lowered(name) for stem in stems), name


def test_the_fold_table_is_every_non_ascii_character_re_matches_to_ascii() -> None:
    ascii_any = re.compile("[\x00-\x7f]", re.IGNORECASE)
    folds = {chr(c) for c in range(0x80, sys.maxunicode + 1) if ascii_any.fullmatch(chr(c))}
    assert folds == set(redaction._RE_FOLDS)
    for c, ascii_char in redaction._RE_FOLDS.items():
        assert re.fullmatch(re.escape(ascii_char), c, re.IGNORECASE)
    longer = [hex(c) for c in range(sys.maxunicode + 1) if len(chr(c).lower()) != 1]
    assert longer == ["0x130"]  # İ, mapped before lowering


def test_a_folded_letter_in_a_case_insensitive_format_is_still_redacted() -> None:
    """re matches "ſ" to "s" and "K" (Kelvin) to "k" under IGNORECASE; the webhook rule's literal
    ("hooks.slack.com") must still be found in the text's lowered form."""
    for host in ("hooks.slack.com", "hooKs.slacK.com", "hooks.ſlack.com", "HOOKS.SLACK.COM"):
        text = f"see https://{host}/services/T0ABC/B0DEF/xyz123abc"
        assert redact_text(text) == ("see [REDACTED]", ["detect_secrets:slack_token"]), text
        _same(text)


def test_the_memo_holds_only_digests_and_redacted_text() -> None:
    redaction._MEMO.clear()
    for _, text, _ in SECRETS:
        redact_text(text)
        redact_text(f"prefix {text}")
    items = dict(redaction._MEMO._items)
    assert len(items) == 2 * len(SECRETS)
    for _, text, secret in SECRETS:
        for key, (value, kinds) in items.items():
            assert isinstance(key, bytes) and len(key) == 32
            assert secret not in value and secret.encode() not in key
            assert all(k.isidentifier() or k.startswith("detect_secrets:") for k in kinds)
        # A hit is the redacted text, and the caller's copy of the kinds is its own.
        clean, kinds = redact_text(text)
        assert secret not in clean and REDACTED in clean
        kinds.append("mine")
        assert "mine" not in redact_text(text)[1]
    # The key is a keyed digest: it is not the plain digest of the text.
    import hashlib

    plain = {hashlib.blake2b(t.encode(), digest_size=32).digest() for _, t, _ in SECRETS}
    assert not plain & set(items)


def test_the_memo_is_bounded() -> None:
    memo: redaction.DigestMemo[str] = redaction.DigestMemo(8, 1000, len)
    for n in range(50):
        memo.put(memo.digest(str(n)), f"r{n}")
    assert len(memo.values()) == 8 and memo.get(memo.digest("49")) == "r49"
    assert memo.get(memo.digest("0")) is None
    memo.put(memo.digest("big"), "x" * 900)  # over a 16th of the budget: not kept
    assert memo.get(memo.digest("big")) is None
    for n in range(8):
        memo.put(memo.digest(f"w{n}"), "y" * 60)
    assert sum(map(len, memo.values())) <= 1000
    # The context is part of the key, and no (text, context) split shares one.
    assert len({memo.digest("ab", "c"), memo.digest("a", "bc"), memo.digest("ab"), memo.digest("abc")}) == 4
