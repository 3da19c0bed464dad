"""The only module that touches files. Everything else works on dicts already in memory.

Each loader takes files or directories, so a `kubectl get ... -o yaml` dump, a folder of
manifests or a CloudTrail S3 prefix synced locally (`*.json.gz`) load the same way.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from jobs.reconciliation.iam import IamPolicy, parse_policy
from jobs.reconciliation.rbac import RbacInventory

PathLike = str | Path
_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def _files(paths: Iterable[PathLike], suffixes: tuple[str, ...]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(suffixes))
        else:
            yield path


def _read_text(path: Path) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return fh.read()
    return path.read_text(encoding="utf-8")


def load_yaml_documents(*paths: PathLike) -> list[dict[str, Any]]:
    """Every document of every (multi-document) YAML or JSON file; empty documents dropped."""
    docs: list[dict[str, Any]] = []
    for path in _files(paths, _MANIFEST_SUFFIXES):
        docs.extend(d for d in yaml.safe_load_all(_read_text(path)) if isinstance(d, dict))
    return docs


def load_rbac(*paths: PathLike) -> RbacInventory:
    return RbacInventory.from_objects(load_yaml_documents(*paths))


def _json_documents(text: str) -> list[Any]:
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError:
        return [json.loads(text)]  # one pretty-printed document


def load_audit_events(*paths: PathLike) -> list[dict[str, Any]]:
    """The log backend's output (one Event per line), webhook captures (one `EventList`
    batch per line) or a single pretty-printed Event/EventList document."""
    events: list[dict[str, Any]] = []
    for path in _files(paths, (".log", ".json", ".jsonl", ".gz")):
        for doc in _json_documents(_read_text(path)):
            if isinstance(doc, list):
                events.extend(doc)
            elif isinstance(doc.get("items"), list):
                events.extend(doc["items"])
            else:
                events.append(doc)
    return events


def load_iam_policies(*paths: PathLike) -> list[IamPolicy]:
    """Policy documents as written, or as the AWS CLI returns them (get-role-policy,
    get-policy-version). The policy is named after PolicyName, else the file name."""
    policies: list[IamPolicy] = []
    for path in _files(paths, (".json",)):
        doc = json.loads(_read_text(path))
        name = str(doc.get("PolicyName") or path.stem)
        if "PolicyVersion" in doc:
            doc = doc["PolicyVersion"].get("Document") or {}
        elif "PolicyDocument" in doc:
            doc = doc["PolicyDocument"]
        if isinstance(doc, str):  # some CLI versions return the document URL-decoded as a string
            doc = json.loads(doc)
        policies.append(parse_policy(doc, name))
    return policies


def load_cloudtrail(*paths: PathLike) -> list[dict[str, Any]]:
    """CloudTrail log files (`{"Records": [...]}`, plain or gzipped as delivered to S3)."""
    records: list[dict[str, Any]] = []
    for path in _files(paths, (".json", ".json.gz")):
        records.extend(json.loads(_read_text(path)).get("Records") or [])
    return records


def load_deployments(*paths: PathLike) -> list[dict[str, Any]]:
    """Deployments from manifests or `kubectl get deploy -o yaml` (a List); other kinds ignored."""
    out: list[dict[str, Any]] = []
    for doc in load_yaml_documents(*paths):
        items = doc["items"] if isinstance(doc.get("items"), list) else [doc]
        out.extend(i for i in items if isinstance(i, dict) and i.get("kind", "Deployment") == "Deployment")
    return out
