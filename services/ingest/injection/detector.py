"""Score one untrusted text: normalise, decode, window, score each view, keep the worst.

A long retrieved document is cut into overlapping windows so an instruction buried in page
three is not diluted by the pages around it; every decoded segment is scored on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from runward.core.redaction import DigestMemo
from services.ingest.injection.features import obfuscation_slots, slots
from services.ingest.injection.model import LinearModel
from services.ingest.injection.normalise import fold, normalise
from services.ingest.injection.rules import MODEL, Rule, findings

WINDOW = 2048  # characters per window of consecutive chunks
CHUNK = 320  # characters per sentence chunk
MAX_WINDOWS = 32  # 64 KB scanned per text; beyond that the head and the tail are kept


@dataclass(frozen=True)
class Verdict:
    score: float  # calibrated probability that the text carries an injection or a jailbreak
    flagged: bool
    rules: tuple[Rule, ...]  # the explanation: phrase rules that match what was scored
    obfuscations: tuple[str, ...]  # what normalisation undid (base64, homoglyphs, ...)


class Allowlist:
    """Known benign phrasings per agent, set by the platform team; removed before scoring.

    YAML: `{"*": [phrase, ...], "namespace/deployment": [phrase, ...]}`. A phrase is matched
    case-insensitively on the normalised text, so an attack appended to it is still scored.
    """

    def __init__(self, phrases: Mapping[str, Iterable[str]] | None = None) -> None:
        self._patterns: dict[str, re.Pattern[str]] = {}
        for agent, items in (phrases or {}).items():
            if isinstance(items, str) or not all(isinstance(p, str) for p in items):
                raise ValueError(f"allowlist entry {agent!r} must be a list of phrases (strings)")
            folded = sorted({fold(p)[0].strip() for p in items if p.strip()}, key=len, reverse=True)
            if folded:
                self._patterns[agent] = re.compile("|".join(re.escape(p) for p in folded), re.I)

    @classmethod
    def load(cls, path: Path | None) -> Allowlist:
        if path is None:
            return cls()
        try:
            data: Any = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"injection allowlist {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"injection allowlist {path}: expected a mapping of agent -> list of phrases")
        return cls(data)

    def strip(self, text: str, agent: str | None) -> str:
        for key in ("*", agent):
            pattern = self._patterns.get(key) if key else None
            if pattern is not None:
                text = pattern.sub(" ", text)
        return text


class Detector:
    """`memo`: verdicts kept for that many recent texts (by a keyed digest, never the text, see
    DigestMemo): a chat re-sends its history on every turn. 0 scans every time (the benchmark).
    The memo is emptied when the model or its calibration changes (training recalibrates the
    model it scores with); the weights are read-only once given."""

    def __init__(self, model: LinearModel, allowlist: Allowlist | None = None, memo: int = 8192) -> None:
        self.model = model
        self.allowlist = allowlist or Allowlist()
        self._memo: DigestMemo[Verdict] = DigestMemo(memo, memo)
        self._memo_model: tuple[object, ...] = ()

    @property
    def threshold(self) -> float:
        return self.model.threshold

    def score(self, text: str, agent: str | None = None) -> float:
        return self.assess(text, agent, explain=False).score

    def assess(self, text: str, agent: str | None = None, explain: bool = True) -> Verdict:
        """The verdict on one text; the same for the same text, agent (its allowlist) and `explain`."""
        model = self.model
        calibration = (model, model.bias, model.platt_a, model.platt_b, model.threshold)
        if calibration != self._memo_model:
            self._memo.clear()
            self._memo_model = calibration
        key = self._memo.digest(text, f"{int(explain)}{agent or ''}")
        verdict = self._memo.get(key)
        if verdict is None:
            verdict = self._assess(text, agent, explain)
            self._memo.put(key, verdict)
        return verdict

    def _assess(self, text: str, agent: str | None, explain: bool) -> Verdict:
        norm = normalise(text)
        seen = frozenset(norm.obfuscations)
        main = self.allowlist.strip(norm.text, agent)
        views = [self.allowlist.strip(v, agent) for v in norm.views]
        extra = obfuscation_slots(seen)
        best = max(self.model.score_slots(s, extra) for s in _candidates(main))
        if views:
            best = max(best, *(self.model.score_slots(s, extra) for v in views for s in _candidates(v)))
        flagged = best >= self.model.threshold
        rules: tuple[Rule, ...] = ()
        if explain and flagged:
            matched = {r.name: r for part in (main, *views) for r in findings(part)}
            rules = tuple(matched.values()) or (MODEL,)
        return Verdict(best, flagged, rules, tuple(sorted(seen)))


_SENTENCE_END = re.compile(r"(?<=[.!?。！？\n])\s*")


def _candidates(text: str) -> list[set[int]]:
    """N-gram sets to score: each sentence-sized chunk, and windows of consecutive chunks.

    A planted instruction scores on its own chunk, undiluted by the document around it; a long
    jailbreak scores as a whole window. N-grams are hashed once per chunk and windows are unions.
    """
    if len(text) > WINDOW * MAX_WINDOWS:
        half = WINDOW * MAX_WINDOWS // 2
        text = text[:half] + "\n" + text[-half:]
    pieces = _chunks(text)
    sets = [slots(p) for p in pieces]
    if len(sets) <= 1:
        return sets or [set()]
    out = list(sets)
    window: set[int] = set()
    size = 0
    for piece, found in zip(pieces, sets, strict=True):
        if size and size + len(piece) > WINDOW:
            out.append(window)
            window, size = set(), 0
        window |= found
        size += len(piece)
    out.append(window)
    return out


def _chunks(text: str) -> list[str]:
    chunks: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > CHUNK * 2:  # one very long "sentence" (minified text, a wall of tokens)
            chunks.append(sentence[:CHUNK])
            sentence = sentence[CHUNK:]
        if current and len(current) + len(sentence) > CHUNK:
            chunks.append(current)
            current = ""
        current = f"{current} {sentence}" if current else sentence
    if current.strip() or not chunks:
        chunks.append(current)
    return chunks


@lru_cache(maxsize=1)
def shipped_model() -> LinearModel:
    """The model in this package, read once per process."""
    return LinearModel.load()
