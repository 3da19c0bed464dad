"""Hashed character and word n-grams: the detector's features, identical at training and scoring.

Character n-grams survive spelling games and languages without spaces (zh, ja); word n-grams
carry phrasing ("ignore all previous"). Hashing keeps the model a fixed-size weight vector, so
scoring needs no vocabulary and no numpy: a sum over a few thousand array lookups.
"""

from __future__ import annotations

import math
import re
import zlib
from operator import add

DIM_BITS = 19
DIM = 1 << DIM_BITS
_MASK = DIM - 1
CHAR_NGRAMS = (2, 3, 4, 5)
_WORDS = re.compile(r"\w+", re.UNICODE)
_SPACES = re.compile(r"\s+")
# Character tricks that benign text almost never contains are features of their own (fixed slots
# after the hashed ones). Encodings (base64, hex, URL, rot13) and leetspeak are not: benign text
# carries tokens, hashes and "b2b"; what was hidden there is decoded and scored on its content.
OBFUSCATIONS = (
    "tag_characters",
    "invisible_characters",
    "homoglyphs",
    "spaced_letters",
)
N_FEATURES = DIM + len(OBFUSCATIONS)


def _slot(token: str) -> int:
    return zlib.crc32(token.encode("utf-8", "surrogatepass")) & _MASK


def slots(text: str) -> set[int]:
    """The hashed n-grams present in a text (binary: presence, not counts)."""
    lowered = _SPACES.sub(" ", text.lower()).strip()
    padded = f" {lowered} "
    # n-grams grown one character at a time with map(add): the loop runs in C, not in Python.
    grams: set[str] = set()
    current: list[str] = list(padded)
    for n in range(2, CHAR_NGRAMS[-1] + 1):
        current = list(map(add, current, padded[n - 1 :]))
        if n in CHAR_NGRAMS:
            grams.update(current)
    words = _WORDS.findall(lowered)
    grams.update(["w:" + w for w in words])
    grams.update([f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False)])
    # Distinct grams hashed in C (map), masked once: the hot loop of scoring. str.encode is
    # UTF-8 and a C call; only a text with a lone surrogate needs "surrogatepass" (same bytes else).
    try:
        return {h & _MASK for h in map(zlib.crc32, map(str.encode, grams))}
    except UnicodeEncodeError:
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
