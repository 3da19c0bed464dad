"""Measure a detector on labelled JSON lines: recall, false-positive rate, precision, AUROC, latency."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from jobs.detector.corpus import read_jsonl
from services.ingest.injection.detector import Detector


@dataclass
class Figures:
    n: int
    positives: int
    recall: float | None
    fpr: float | None
    precision: float | None
    auroc: float | None
    p50_ms: float
    p99_ms: float
    threshold: float

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def evaluate(detector: Detector, paths: Iterable[Path]) -> Figures:
    rows = list(read_jsonl(paths))
    if not rows:
        raise ValueError("no labelled rows to evaluate")
    scores: list[float] = []
    latencies: list[float] = []
    for row in rows:
        start = time.perf_counter()
        scores.append(detector.score(row["text"]))
        latencies.append((time.perf_counter() - start) * 1000)
    labels = [int(r["label"]) for r in rows]
    flagged = [s >= detector.threshold for s in scores]
    tp = sum(f and y for f, y in zip(flagged, labels, strict=True))
    fp = sum(f and not y for f, y in zip(flagged, labels, strict=True))
    pos = sum(labels)
    neg = len(labels) - pos
    return Figures(
        n=len(rows),
        positives=pos,
        recall=round(tp / pos, 4) if pos else None,
        fpr=round(fp / neg, 4) if neg else None,
        precision=round(tp / (tp + fp), 4) if tp + fp else None,
        auroc=_auroc(scores, labels),
        p50_ms=round(percentile(latencies, 50), 3),
        p99_ms=round(percentile(latencies, 99), 3),
        threshold=round(detector.threshold, 4),
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def _auroc(scores: list[float], labels: list[int]) -> float | None:
    """Probability that a random injection outscores a random benign text (ties count half)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    ranked = sorted((s, y) for s, y in zip(scores, labels, strict=True))
    # Mann-Whitney U with average ranks for ties.
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        avg = (i + j + 1) / 2
        rank_sum += avg * sum(y for _, y in ranked[i:j])
        i = j
    u = rank_sum - len(pos) * (len(pos) + 1) / 2
    return round(u / (len(pos) * len(neg)), 4)


def render(figures: Figures) -> str:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f} %"

    return "\n".join(
        [
            f"rows        {figures.n} ({figures.positives} injection, {figures.n - figures.positives} benign)",
            f"threshold   {figures.threshold}",
            f"recall      {pct(figures.recall)}",
            f"FPR         {pct(figures.fpr)}",
            f"precision   {pct(figures.precision)}",
            f"AUROC       {'n/a' if figures.auroc is None else figures.auroc}",
            f"latency     p50 {figures.p50_ms} ms, p99 {figures.p99_ms} ms per text",
        ]
    )


def timed(detector: Detector, texts: list[str]) -> list[float]:
    out = []
    for text in texts:
        start = time.perf_counter()
        detector.score(text)
        out.append((time.perf_counter() - start) * 1000)
    return out
