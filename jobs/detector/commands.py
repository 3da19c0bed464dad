"""`detector train` and `detector eval`: what the CLI (runward/control/cli/detector.py) runs."""

from __future__ import annotations

import json
from pathlib import Path

from jobs.detector.evaluate import evaluate, render
from services.ingest.injection.detector import Detector
from services.ingest.injection.model import MODEL_DIR, LinearModel


def run_train(out: Path = MODEL_DIR, c: float = 16.0, seed: int = 11, splits_dir: Path | None = None) -> str:
    from jobs.detector.train import train  # scikit-learn is needed to train, not to score

    result = train(out, c, seed, splits_dir)
    lines = [f"model written to {out} (threshold {result.model.threshold:.4f})"]
    for split, count in result.counts.items():
        lines.append(f"  {split:5}  " + ", ".join(f"{k} {v}" for k, v in count.items()))
    lines.append(f"  dev: recall {100 * result.dev_recall:.1f} %, FPR {100 * result.dev_fpr:.1f} %")
    if splits_dir is not None:
        lines.append(f"  dev.jsonl and test.jsonl written to {splits_dir}")
    return "\n".join(lines)


def run_eval(files: list[Path], as_json: bool = False, model_dir: Path = MODEL_DIR) -> str:
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"no such labelled file: {', '.join(missing)}")
    # memo=0: each latency is a full scan, even for a text the file repeats.
    figures = evaluate(Detector(LinearModel.load(model_dir), memo=0), files)
    if as_json:
        keys = ("n", "recall", "fpr", "precision", "auroc", "p50_ms", "p99_ms")
        return json.dumps({k: figures.as_dict()[k] for k in keys})
    return render(figures)
