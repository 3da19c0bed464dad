"""Undo the obfuscations attackers use to slip an instruction past a filter.

The detector scores what the model would understand, not the bytes on the wire: Unicode
compatibility forms, invisible characters, look-alike letters and leetspeak are folded, and
segments in base64, hex, rot13 or URL encoding are decoded into extra views that are scored too.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import unquote

# Invisible characters that render as nothing but split words for a pattern or a tokeniser.
_INVISIBLE = dict.fromkeys(
    [
        0x00AD,  # soft hyphen
        0x034F,  # combining grapheme joiner
        0x061C,  # arabic letter mark
        0x115F,
        0x1160,
        0x17B4,
        0x17B5,
        0x180E,  # mongolian vowel separator
        *range(0x200B, 0x2010),  # zero-width space/joiners, LRM, RLM
        *range(0x202A, 0x202F),  # bidi embeddings and overrides
        *range(0x2060, 0x2070),  # word joiner, invisible operators, bidi isolates
        0x3164,
        *range(0xFE00, 0xFE10),  # variation selectors
        0xFEFF,  # byte-order mark / zero-width no-break space
        0xFFA0,
    ]
)

# Unicode tag characters (U+E0020..U+E007E) mirror ASCII invisibly: "ASCII smuggling".
_TAG_BASE = 0xE0000
_TAG_CHARACTER = re.compile(f"[{chr(_TAG_BASE + 0x20)}-{chr(_TAG_BASE + 0x7E)}]")

# Look-alike letters from Cyrillic, Greek and Latin extensions that NFKC leaves alone.
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
        "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w",
        "һ": "h", "ɡ": "g", "ո": "n", "ս": "u", "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H",
        "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ү": "Y",
        "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
        "χ": "x", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
        "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ı": "i", "ȷ": "j", "ℓ": "l",
    }
)  # fmt: skip
_CONFUSABLE = frozenset(_HOMOGLYPHS)
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l"}
)

_WORD = re.compile(r"[^\W_]+(?:[$!|0-9][^\W_]*)*", re.UNICODE)
# Only words mixing Latin letters with digits, signs or look-alikes can need folding: the regex
# finds those in C, so ordinary prose costs no Python call per word. The look-aheads are bounded
# and start only at a word's start, so a 100 KB run of letters stays linear.
_SUSPECT = re.compile(
    "(?<![^\\W_])(?=[^\\W_]{0,24}[a-zA-Z])(?=[^\\W_]{0,24}[$!|0-9"
    + "".join(chr(c) for c in sorted(_CONFUSABLE))
    + "])"
    + _WORD.pattern
)
# "10am", "3d", "5pm": a leading number with a unit is not leetspeak.
_UNITS = frozenset("am pm d k m g s x h min gb mb kb px ms km kg cm mm".split())  # noqa: SIM905
_ORDINAL = re.compile(r"(?:\d*1st|\d*2nd|\d*3rd|\d+th)", re.I)
_LATIN = re.compile(r"[a-zA-Z]")
_HEXISH = re.compile(r"[0-9a-fA-F]+")
_SPACED = re.compile(r"(?<!\S)(?:\S {1,3}){7,}\S(?!\S)")
_HAS_DIGIT_OR_SIGN = re.compile(r"[0-9@$!|]")

_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = re.compile(r"(?:(?:\\x|0x)?[0-9a-fA-F]{2}[\s:,-]?){8,}")
_URLENC = re.compile(r"(?:%[0-9a-fA-F]{2}[^%\s]*){3,}")
# Very frequent English (and fr/de/es/pt) words: a rot13 view is kept when it reads as language
# and the original does not.
_COMMON = frozenset(
    [
        "the",
        "and",
        "you",
        "to",
        "of",
        "is",
        "in",
        "that",
        "it",
        "for",
        "your",
        "all",
        "are",
        "with",
        "this",
        "be",
        "not",
        "as",
        "now",
        "on",
        "from",
        "any",
        "will",
        "instructions",
        "ignore",
        "previous",
        "prompt",
        "system",
        "say",
        "print",
        "tell",
        "me",
        "what",
        "how",
        "und",
        "der",
        "die",
        "das",
        "ist",
        "nicht",
        "alle",
        "und",
        "ich",
        "du",
        "et",
        "le",
        "la",
        "les",
        "est",
        "pas",
        "que",
        "tu",
        "vous",
        "el",
        "los",
        "las",
        "que",
        "no",
        "es",
        "una",
        "todas",
        "você",
        "não",
        "uma",
        "com",
        "para",
    ]  # noqa: SIM905
)

MAX_VIEWS = 8  # decoded views scored per text; more is someone trying to exhaust the scanner


@dataclass
class Normalised:
    """A text as the model would read it, plus what was decoded from it."""

    text: str
    views: list[str] = field(default_factory=list)  # decoded segments, each scored on its own
    obfuscations: set[str] = field(default_factory=set)  # what was undone: evidence for the story


def fold(text: str) -> tuple[str, set[str]]:
    """NFKC, invisible-character removal, tag-character decoding, homoglyph and leetspeak folding."""
    stripped, seen = _unhide(text)
    return _SUSPECT.sub(lambda m: _fold_word(m.group(0), seen), stripped), seen


def _unhide(text: str) -> tuple[str, set[str]]:
    seen: set[str] = set()
    folded = unicodedata.normalize("NFKC", text)
    if folded != text and unicodedata.normalize("NFC", text) != folded:
        seen.add("unicode_compat")
    if not folded.isascii() and _TAG_CHARACTER.search(folded):
        folded = "".join(chr(ord(c) - _TAG_BASE) if _TAG_BASE <= ord(c) <= _TAG_BASE + 0x7F else c for c in folded)
        seen.add("tag_characters")
    stripped = folded.translate(_INVISIBLE)
    if stripped != folded:
        seen.add("invisible_characters")
    if _SPACED.search(stripped):
        stripped = _SPACED.sub(_unspace, stripped)
        seen.add("spaced_letters")
    return stripped, seen


def _unspace(match: re.Match[str]) -> str:
    # "P r i n t   y o u r": one space between letters, wider gaps between words.
    return " ".join(word.replace(" ", "") for word in re.split(r" {2,}", match.group(0)))


def _fold_word(word: str, seen: set[str]) -> str:
    # Only mixed words are folded: a Russian or Greek word stays itself, "ignоre" with a Cyrillic o does not.
    if _LATIN.search(word) and any(ord(c) in _CONFUSABLE for c in word):
        word = word.translate(_HOMOGLYPHS)
        seen.add("homoglyphs")
    if len(word) <= 20 and _HAS_DIGIT_OR_SIGN.search(word) and _LATIN.search(word) and not _HEXISH.fullmatch(word):
        letters = sum(c.isalpha() for c in word)
        if letters >= 2 and not _looks_like_identifier(word):
            word = word.translate(_LEET)
            seen.add("leetspeak")
    return word


def _looks_like_identifier(word: str) -> bool:
    # "utf8", "sha256", "mp3", "x86": trailing digits are versions, not leetspeak.
    if word.rstrip("0123456789").isalpha():
        return True
    rest = word.lstrip("0123456789")
    return rest.isalpha() and (len(word) - len(rest) > 1 or rest.lower() in _UNITS or bool(_ORDINAL.fullmatch(word)))


def normalise(text: str) -> Normalised:
    # Encodings are found before folding: leetspeak folding would corrupt base64 and hex digits.
    unhidden, seen = _unhide(text)
    result = Normalised(_SUSPECT.sub(lambda m: _fold_word(m.group(0), seen), unhidden), obfuscations=seen)
    for name, decoded in _decoded_segments(unhidden):
        if len(result.views) >= MAX_VIEWS:
            break
        view, inner = fold(decoded)
        result.views.append(view)
        result.obfuscations.update({name, *inner})
    return result


def _decoded_segments(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for match in _BASE64.finditer(text):
        decoded = _b64(match.group(0))
        if decoded:
            found.append(("base64", decoded))
    for match in _HEX.finditer(text):
        digits = re.sub(r"\\x|0x|[\s:,-]", "", match.group(0))
        decoded = _printable(_try(binascii.unhexlify, digits[: len(digits) // 2 * 2]))
        if decoded:
            found.append(("hex", decoded))
    if _URLENC.search(text):
        decoded = unquote(text)
        if decoded != text:
            found.append(("url_encoding", decoded))
    rot = codecs.decode(text, "rot13")
    words = _english_words(rot)
    if words >= 3 and words > 2 * _english_words(text):
        found.append(("rot13", rot))
    return found


def _b64(segment: str) -> str | None:
    if segment.isalpha() or segment.isdigit():
        return None  # a long word or number, not an encoding
    padded = segment + "=" * (-len(segment) % 4)
    raw = _try(base64.urlsafe_b64decode, padded.replace("+", "-").replace("/", "_"))
    return _printable(raw)


def _try(decode: object, value: str) -> bytes | None:
    try:
        return decode(value)  # type: ignore[operator,no-any-return]
    except (ValueError, binascii.Error):
        return None


def _printable(raw: bytes | None) -> str | None:
    """Decoded bytes count as hidden text only when they read as text (UTF-8, mostly printable)."""
    if not raw or len(raw) < 6:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(c.isprintable() or c in "\n\t" for c in text)
    letters = sum(c.isalpha() for c in text)
    if printable / len(text) < 0.95 or letters / len(text) < 0.5:
        return None
    return text


def _english_words(text: str) -> int:
    return sum(1 for w in re.findall(r"[a-z]+", text.lower()) if w in _COMMON)
