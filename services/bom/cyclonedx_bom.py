"""Runtime evidence as a CycloneDX 1.6 AI-BOM, built and validated with cyclonedx-python-lib."""

from __future__ import annotations

import json
from typing import Any

from cyclonedx.model import Property, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.lifecycle import LifecyclePhase, PredefinedLifecycle
from cyclonedx.model.service import Service
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from services.bom.evidence import RuntimeEvidence


class InvalidBom(ValueError):
    pass


def runtime_bom(evidence: RuntimeEvidence) -> dict[str, Any]:
    bom = Bom()
    bom.metadata.lifecycles = [PredefinedLifecycle(LifecyclePhase.OPERATIONS)]
    namespace, _, name = evidence.deployment.partition("/")
    bom.metadata.component = Component(name=name, group=namespace, type=ComponentType.APPLICATION,
                                       bom_ref=f"deployment:{evidence.deployment}")
    for pkg, version in sorted(evidence.python_packages.items()):
        bom.components.add(Component(name=pkg, version=version, type=ComponentType.LIBRARY,
                                     purl=PackageURL("pypi", pkg, version), bom_ref=f"pypi:{pkg}@{version}"))
    for lib in evidence.native_libraries:
        bom.components.add(Component(name=lib, type=ComponentType.LIBRARY, bom_ref=f"native:{lib}"))
    for key, use in sorted(evidence.models.items()):
        props = [Property(name="runward:model:provider", value=use.provider),
                 Property(name="runward:model:calls", value=str(use.calls))]
        if use.requested:
            props.append(Property(name="runward:model:requested", value=use.requested))
        if use.served:
            props.append(Property(name="runward:model:served", value=use.served))
        bom.components.add(Component(name=use.served or use.requested or key, group=use.provider,
                                     type=ComponentType.MACHINE_LEARNING_MODEL, bom_ref=f"model:{key}",
                                     properties=props))
    for path in evidence.model_files:
        bom.components.add(Component(name=path.rsplit("/", 1)[-1], type=ComponentType.MACHINE_LEARNING_MODEL,
                                     bom_ref=f"model-file:{path}",
                                     properties=[Property(name="runward:model:path", value=path)]))
    for key, reg in sorted(evidence.tools.items()):
        bom.services.add(Service(name=reg.tool, group=reg.server, bom_ref=f"mcp-tool:{key}", properties=[
            Property(name="runward:mcp:registered", value="startup" if reg.at_startup else "after-startup"),
            Property(name="runward:mcp:first-seen", value=reg.first_seen.isoformat()),
        ]))
    for endpoint in evidence.endpoints:
        host, _, rest = endpoint.rpartition(":")
        port, _, proto = rest.partition("/")
        bom.services.add(Service(name=host, bom_ref=f"endpoint:{endpoint}",
                                 endpoints=[XsUri(f"{proto}://{host}:{port}")]))
    text = JsonV1Dot6(bom).output_as_string()
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise InvalidBom(f"generated AI-BOM for {evidence.deployment} does not validate: {error}")
    result: dict[str, Any] = json.loads(text)
    return result
