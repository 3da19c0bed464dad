"""Prompt-injection and jailbreak detection for the input surface (ingest's domain).

`Detector.assess(text)` normalises the text (NFKC, invisible characters, homoglyphs,
leetspeak, decoded base64/hex/rot13/URL segments), scores it with the shipped linear model
and names the phrase rules that explain a flag. Pure: no I/O beyond loading the model once.
"""

from services.ingest.injection.detector import Allowlist, Detector, Verdict, shipped_model
from services.ingest.injection.model import LinearModel, ModelError
from services.ingest.injection.rules import RULES, Rule, findings

__all__ = [
    "RULES",
    "Allowlist",
    "Detector",
    "LinearModel",
    "ModelError",
    "Rule",
    "Verdict",
    "findings",
    "shipped_model",
]
