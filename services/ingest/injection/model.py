"""The shipped linear model: hashed-feature weights, a Platt calibration and a threshold.

Stored as `model.json` (metadata) and `model.bin.gz` (float32 weights, little-endian). It is
loaded once per process with the standard library only; scoring is a sparse dot product.
"""

from __future__ import annotations

import gzip
import json
import math
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.ingest.injection.features import N_FEATURES

MODEL_DIR = Path(__file__).parent
META_FILE = "model.json"
WEIGHTS_FILE = "model.bin.gz"


class ModelError(RuntimeError):
    """The model files are missing or do not match this code's feature layout."""


@dataclass
class LinearModel:
    weights: array  # type: ignore[type-arg]
    bias: float
    platt_a: float = 1.0  # calibrated score = sigmoid(a * margin + b), fitted on the dev split
    platt_b: float = 0.0
    threshold: float = 0.5  # on the calibrated score, chosen on the dev split
    meta: dict[str, Any] = field(default_factory=dict)

    def margin(self, feats: dict[int, float]) -> float:
        w = self.weights
        return self.bias + sum(w[i] * v for i, v in feats.items())

    def score(self, feats: dict[int, float]) -> float:
        return self.calibrated(self.margin(feats))

    def score_slots(self, slots: set[int], extra: list[int]) -> float:
        """`score` for binary L2-normalised n-grams plus unit indicators, without building a vector."""
        lookup = self.weights.__getitem__
        ngrams = sum(map(lookup, slots)) / math.sqrt(len(slots)) if slots else 0.0
        return self.calibrated(self.bias + ngrams + sum(map(lookup, extra)))

    def calibrated(self, margin: float) -> float:
        z = self.platt_a * margin + self.platt_b
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0

    def save(self, directory: Path = MODEL_DIR) -> None:
        weights = array("f", self.weights)
        if sys.byteorder != "little":
            weights.byteswap()
        with gzip.GzipFile(directory / WEIGHTS_FILE, "wb", compresslevel=9, mtime=0) as fh:
            fh.write(weights.tobytes())
        meta = {
            **self.meta,
            "n_features": len(self.weights),
            "bias": self.bias,
            "platt_a": self.platt_a,
            "platt_b": self.platt_b,
            "threshold": self.threshold,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: Path = MODEL_DIR) -> LinearModel:
        meta_path, weights_path = directory / META_FILE, directory / WEIGHTS_FILE
        if not meta_path.exists() or not weights_path.exists():
            raise ModelError(
                f"no injection model in {directory} ({META_FILE}, {WEIGHTS_FILE}); "
                "build it with `runward detector train` (python -m jobs.detector train)"
            )
        meta = json.loads(meta_path.read_text())
        weights = array("f")
        weights.frombytes(gzip.decompress(weights_path.read_bytes()))
        if sys.byteorder != "little":
            weights.byteswap()
        if len(weights) != N_FEATURES or meta.get("n_features") != N_FEATURES:
            raise ModelError(
                f"{weights_path} has {len(weights)} weights but the feature layout has {N_FEATURES}; "
                "retrain with `runward detector train`"
            )
        return cls(
            weights=weights,
            bias=float(meta["bias"]),
            platt_a=float(meta["platt_a"]),
            platt_b=float(meta["platt_b"]),
            threshold=float(meta["threshold"]),
            meta=meta,
        )
