"""Hashed character and word n-grams: the detector's features, identical at training and scoring.

Character n-grams survive spelling games and languages without spaces (zh, ja); word n-grams
carry phrasing ("ignore all previous"). Hashing keeps the model a fixed-size weight vector, so
scoring needs no vocabulary and no numpy: a sum over a few thousand array lookups.
"""

from __future__ import annotations

import math
import re
import zlib

DIM_BITS = 19
DIM = 1 << DIM_BITS
_MASK = DIM - 1
CHAR_NGRAMS = (2, 3, 4, 5)
_WORDS = re.compile(r"\w+", re.UNICODE)
_SPACES = re.compile(r"\s+")
# Extra features describing how the text was hidden; they sit at fixed slots after the hashed ones.
OBFUSCATIONS = (
    "unicode_compat",
    "tag_characters",
    "invisible_characters",
    "homoglyphs",
    "leetspeak",
    "base64",
    "hex",
    "url_encoding",
    "rot13",
    "spaced_letters",
    "decoded_view",
)
N_FEATURES = DIM + len(OBFUSCATIONS)


def _slot(token: str) -> int:
    return zlib.crc32(token.encode("utf-8", "surrogatepass")) & _MASK


def slots(text: str) -> set[int]:
    """The hashed n-grams present in a text (binary: presence, not counts)."""
    lowered = _SPACES.sub(" ", text.lower()).strip()
    padded = f" {lowered} "
    grams = {padded[i : i + n] for n in CHAR_NGRAMS for i in range(len(padded) - n + 1)}
    words = _WORDS.findall(lowered)
    grams.update(["w:" + w for w in words])
    grams.update([f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False)])
    # Distinct grams hashed in C (map), masked once: the hot loop of scoring.
    return {h & _MASK for h in map(zlib.crc32, map(_utf8, grams))}


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def obfuscation_slots(obfuscations: frozenset[str] | set[str]) -> list[int]:
    return [DIM + i for i, name in enumerate(OBFUSCATIONS) if name in obfuscations]


def features(text: str, obfuscations: frozenset[str] | set[str] = frozenset()) -> dict[int, float]:
    """L2-normalised binary n-gram presence plus one indicator per undone obfuscation (the training view)."""
    return vector(slots(text), obfuscations)


def vector(found: set[int], obfuscations: frozenset[str] | set[str] = frozenset()) -> dict[int, float]:
    slots = found
    out: dict[int, float] = {}
    if slots:
        value = 1.0 / math.sqrt(len(slots))
        out = dict.fromkeys(slots, value)
    for i in obfuscation_slots(obfuscations):
        out[i] = 1.0
    return out
