"""Strict validation of Kubernetes objects, as the API server would take them: core objects by
kubernetes-validate, custom resources by the vendored CRD schemas (tests/data/crds, see SOURCES.md).

One wrapper for what the enforcer emits (policies, seccomp profiles) and for what deploy/ installs
(the kustomize overlays, Strimzi topics)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

CRDS = Path(__file__).resolve().parent / "data" / "crds"
# The oldest Kubernetes minor still maintained upstream when this was written, and the newest.
KUBERNETES_VERSIONS = ("1.32.0", kubernetes_validate.latest_version())


def closed(schema: Any) -> Any:
    """The API server prunes fields a structural schema does not declare (silently: a misspelt or
    unsupported field would just vanish); close every object that lists its properties and does
    not keep unknown fields, so such a field fails here instead."""
    if isinstance(schema, dict):
        schema = {k: closed(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


@functools.cache
def validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    found: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = closed(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                found[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    # Cilium's CRD as a JSON schema (already closed: additionalProperties false throughout).
    cilium = json.loads((CRDS / "cilium-ciliumnetworkpolicy_v2.json").read_text())
    found[("cilium.io/v2", "CiliumNetworkPolicy")] = jsonschema.Draft7Validator(cilium)
    return found


def problems(doc: dict[str, Any]) -> list[str]:
    """Every reason the API server (or its CRD) would refuse or prune `doc`; empty when valid."""
    validator = validators().get((doc["apiVersion"], doc["kind"]))
    if validator is not None:
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))
        return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]
    found = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            found.append(f"no schema for {doc['apiVersion']} {doc['kind']}: vendor its CRD into tests/data/crds")
        except kubernetes_validate.ValidationError as exc:
            found.append(f"Kubernetes {version}: {exc}")
    return found
