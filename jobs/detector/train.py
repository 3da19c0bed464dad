"""Fit the injection model: logistic regression over hashed n-grams, Platt-calibrated on dev.

The threshold is the lowest calibrated score whose false-positive rate on dev stays within the
target (1 %, leaving room under the 2 % goal); the test split is not read here.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression

from jobs.detector import corpus
from services.ingest.injection.detector import Detector
from services.ingest.injection.features import N_FEATURES, features
from services.ingest.injection.model import MODEL_DIR, LinearModel
from services.ingest.injection.normalise import normalise

TARGET_DEV_FPR = 0.01


@dataclass
class TrainResult:
    model: LinearModel
    counts: dict[str, dict[str, int]]
    dev_recall: float
    dev_fpr: float


def _matrix(texts: list[str]) -> csr_matrix:
    data: list[float] = []
    indices: list[int] = []
    indptr = [0]
    for text in texts:
        norm = normalise(text)
        # Decoded views are scored as their own texts at run time; training sees them folded in.
        feats = features(" ".join([norm.text, *norm.views]), norm.obfuscations)
        indices.extend(feats)
        data.extend(feats.values())
        indptr.append(len(indices))
    return csr_matrix((data, indices, indptr), shape=(len(texts), N_FEATURES), dtype=np.float64)


def fit(rows: list[dict[str, Any]], c: float = 16.0, seed: int = 11) -> TrainResult:
    train = corpus.augment([r for r in rows if r["split"] == "train"], seed)
    dev = [r for r in rows if r["split"] == "dev"]
    x = _matrix([r["text"] for r in train])
    y = np.array([r["label"] for r in train])
    clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", solver="liblinear", random_state=seed)
    clf.fit(x, y)
    weights = array("f")
    weights.frombytes(clf.coef_[0].astype("<f4").tobytes())
    model = LinearModel(weights=weights, bias=float(clf.intercept_[0]))
    # Platt scaling on dev margins, computed the way the detector scores (windows, decoded views).
    scorer = Detector(model)
    margins = np.array([_margin(scorer, r["text"]) for r in dev])
    labels = np.array([r["label"] for r in dev])
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(margins.reshape(-1, 1), labels)
    model.platt_a, model.platt_b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    scores = np.array([scorer.score(r["text"]) for r in dev])
    model.threshold = _threshold(scores, labels, TARGET_DEV_FPR)
    flagged = scores >= model.threshold
    counts = {
        s: {"rows": sum(r["split"] == s for r in rows), "injection": sum(r["split"] == s and r["label"] for r in rows)}
        for s in corpus.SPLITS
    }
    counts["train"]["augmented"] = len(train) - counts["train"]["rows"]
    dev_recall = float(flagged[labels == 1].mean())
    dev_fpr = float(flagged[labels == 0].mean())
    model.meta = {
        "kind": "logistic regression over hashed char 2-5-grams and word 1-2-grams",
        "C": c,
        "seed": seed,
        "counts": counts,
        "dev": {"recall": round(dev_recall, 4), "fpr": round(dev_fpr, 4), "target_fpr": TARGET_DEV_FPR},
        "corpus_sha256": hashlib.sha256(
            json.dumps([[r["text"], r["label"], r["split"]] for r in rows], ensure_ascii=False).encode()
        ).hexdigest(),
    }
    return TrainResult(model, counts, dev_recall, dev_fpr)


def _margin(detector: Detector, text: str) -> float:
    # The calibrated score is monotone in the margin, so the worst view by score is the worst by margin.
    a, b = detector.model.platt_a, detector.model.platt_b
    detector.model.platt_a, detector.model.platt_b = 1.0, 0.0
    try:
        p = min(max(detector.score(text), 1e-12), 1 - 1e-12)
    finally:
        detector.model.platt_a, detector.model.platt_b = a, b
    return float(np.log(p / (1 - p)))


def _threshold(scores: np.ndarray, labels: np.ndarray, target_fpr: float) -> float:
    benign = np.sort(scores[labels == 0])[::-1]
    allowed = int(np.floor(target_fpr * len(benign)))
    # Just above the (allowed+1)-th highest benign score: at most `allowed` benign rows flagged.
    cut = benign[allowed] if allowed < len(benign) else 0.0
    return float(min(max(np.nextafter(cut, 1.0), 0.05), 0.99))


def train(out: Path = MODEL_DIR, c: float = 16.0, seed: int = 11, splits_dir: Path | None = None) -> TrainResult:
    rows = corpus.rows(seed)
    result = fit(rows, c, seed)
    out.mkdir(parents=True, exist_ok=True)
    result.model.save(out)
    if splits_dir is not None:
        corpus.write_splits(splits_dir, seed)
    return result
