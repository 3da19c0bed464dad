"""Runtime and declared AI-BOMs as CycloneDX 1.6 JSON, built with cyclonedx-python-lib and
checked by its strict validator before anything is published.

The library has no modelCard yet, so model cards are added to the JSON after serialisation
and the document is validated again as a whole.

An agent's revisions differ by a few parts, so a revision reuses the library objects of the
last one's unchanged components and services (`_Parts`), and the validator checks a component,
service or dependency entry it found valid before only by its digest (`_memoised_ref`); every
revision is still built and serialised by the library and validated as a whole document.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar, cast

from cyclonedx.model import Property, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.component_evidence import (
    AnalysisTechnique,
    ComponentEvidence,
    Identity,
    IdentityField,
    Method,
    Occurrence,
)
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.lifecycle import LifecyclePhase, PredefinedLifecycle
from cyclonedx.model.service import Service
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator, JsonValidationError
from jsonschema import Draft7Validator, validators
from packageurl import PackageURL

from services.bom.declared import DeclaredBom, command_line
from services.bom.evidence import (
    LOCAL,
    McpServer,
    ModelFile,
    NativeLibrary,
    RuntimeEvidence,
    ToolRegistration,
    observed_packages,
)

# The library percent-encodes IPv6 brackets into an invalid IRI, so IPv6 peers keep their
# address as a property only.
_HOSTNAME = re.compile(r"^(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+$")
_SERIALS = uuid.UUID("6f1d3c1e-8f1a-4d52-9a39-2b8f0f5f2a11")  # namespace for per-agent BOM serials
_INSTRUMENTED = AnalysisTechnique.INSTRUMENTATION
_MANIFEST = AnalysisTechnique.MANIFEST_ANALYSIS
P = TypeVar("P", Component, Service)


class InvalidBom(ValueError):
    pass


# --- runtime (lifecycle operations) ----------------------------------------------------------


def runtime_bom(evidence: RuntimeEvidence, revision: int = 1, created_at: datetime | None = None) -> dict[str, Any]:
    bom, root = _new_bom(evidence.deployment, LifecyclePhase.OPERATIONS, revision, created_at)
    bom.metadata.properties.add(Property(name="runward:observed-since", value=evidence.started_at.isoformat()))
    for pod in sorted(evidence.pods):
        if pod != "-":
            bom.metadata.properties.add(Property(name="runward:pod", value=pod))
    parts = _Parts(evidence.deployment)
    components = _runtime_components(evidence, parts)
    for component in components:
        bom.components.add(component)
    for service in _runtime_services(evidence, parts):
        bom.services.add(service)
    # The root depends on every component, which depend on nothing known. Registered directly:
    # `register_dependency` looks each component up among the dependencies registered so far (the
    # square of the BOM's size).
    bom.dependencies.add(Dependency(ref=root.bom_ref, dependencies=[Dependency(ref=c.bom_ref) for c in components]))
    bom.dependencies.update(Dependency(ref=c.bom_ref) for c in components)
    document = _serialise(bom)
    cards = {
        _model_ref(u.provider, u.requested, u.served): _api_model_card(u.provider, u.requested, u.served)
        for u in evidence.models.values()
    }
    cards |= {
        f"model-file:{m.path}": _file_model_card(m.format, m.hf_repo, m.revision) for m in evidence.model_files.values()
    }
    _add_model_cards(document, cards)
    validated = validate(document, evidence.deployment)
    parts.keep()
    return validated


def _runtime_components(evidence: RuntimeEvidence, parts: _Parts) -> list[Component]:
    components = [parts.get("image", image, partial(_image, image, _INSTRUMENTED)) for image in evidence.images]
    for pkg in observed_packages(evidence):
        components.append(parts.get("pypi", pkg.model_dump_json(), partial(_observed_package, pkg)))
    for lib in sorted(evidence.native_libraries.values(), key=lambda lib: lib.path):
        components.append(parts.get("native", lib.model_dump_json(), partial(_native_library, lib)))
    for use in sorted(evidence.models.values(), key=lambda u: (u.provider, u.requested or "")):
        material = json.dumps([use.provider, use.requested, use.served])
        components.append(parts.get("model", material, partial(_served_model, use.provider, use.requested, use.served)))
    for artifact in sorted(evidence.model_files.values(), key=lambda m: m.path):
        components.append(parts.get("model-file", artifact.model_dump_json(), partial(_model_file, artifact)))
    return components


def _runtime_services(evidence: RuntimeEvidence, parts: _Parts) -> list[Service]:
    services: list[Service] = []
    for name in sorted(evidence.mcp_servers):
        tools = sorted((t for t in evidence.tools.values() if t.server == name), key=lambda t: t.tool)
        server = evidence.mcp_servers[name]
        material = json.dumps([name, server.model_dump(mode="json"), [t.model_dump(mode="json") for t in tools]])
        services.append(parts.get("mcp", material, partial(_mcp_server, name, server, tools)))
    for _, e in sorted(evidence.endpoints.items()):
        endpoint = partial(_endpoint_service, e.host, e.port, e.protocol, e.kind, e.addresses, e.dns_name)
        services.append(parts.get("endpoint", e.model_dump_json(), partial(endpoint, provider=e.provider)))
    if LOCAL not in evidence.mcp_servers:  # else they are the `local` server's tools
        for t in sorted(evidence.tools.values(), key=lambda t: t.tool):
            if t.server == LOCAL:
                services.append(parts.get("function-tool", t.model_dump_json(), partial(_function_tool, t)))
    return services


class _Parts:
    """The library's components and services of an agent's last runtime BOM, reused by the next.

    A revision differs from the last by a few parts (a new endpoint, a package's new import);
    building every Component and Service again was a third of a revision's cost. A part is the
    same library object while what it is built from (its evidence, as JSON) is the same: keyed by
    the digest of that, never the text. Only the last revision's parts of the most recently
    built agents are kept, at most `MAX` parts in all (a part is ~20 KB of library objects); an
    agent whose parts were dropped builds its next revision from scratch. The parts are not
    changed by the BOMs they are added to, or by serialising them.
    """

    MAX = 2_048
    _recent: OrderedDict[str, dict[bytes, Any]] = OrderedDict()
    _count = 0  # parts in _recent
    _lock = threading.Lock()

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment
        with self._lock:
            self.previous = self._recent.pop(deployment, {})
            _Parts._count -= len(self.previous)
        self.current: dict[bytes, Any] = {}

    @classmethod
    def forget(cls, deployment: str) -> None:
        """Drop an agent's kept parts: its next revision is built from scratch."""
        with cls._lock:
            cls._count -= len(cls._recent.pop(deployment, {}))

    def get(self, kind: str, material: str, build: Callable[[], P]) -> P:
        key = hashlib.sha256(f"{kind}\0{material}".encode()).digest()
        part = self.current.get(key)
        if part is None:
            part = self.previous.get(key)
        if part is None:
            part = build()
        self.current[key] = part
        return cast(P, part)

    def keep(self) -> None:
        """Keep this revision's parts for the agent's next one, dropping the least recent agents' beyond MAX."""
        with self._lock:
            self._recent[self.deployment] = self.current
            _Parts._count += len(self.current)
            while _Parts._count > self.MAX and len(self._recent) > 1:
                _, dropped = self._recent.popitem(last=False)
                _Parts._count -= len(dropped)


def _observed_package(pkg: Any) -> Component:
    identity = [
        _identity(
            IdentityField.NAME,
            "0.9" if pkg.dist_info else "0.6",
            f"imported: {', '.join(pkg.imports)}" if pkg.imports else f"metadata read: {pkg.dist_info}",
        )
    ]
    occurrences = [Occurrence(location=f"{pkg.site}/{imp.replace('.', '/')}") for imp in pkg.imports]
    if pkg.dist_info:
        identity.append(_identity(IdentityField.VERSION, "1", f"dist-info opened: {pkg.dist_info}"))
        occurrences.append(Occurrence(location=pkg.dist_info))
    props = [
        Property(name="runward:python:evidence", value="import" if pkg.imported else "metadata"),
        Property(name="runward:first-seen", value=pkg.first_seen.isoformat()),
    ]
    props += [Property(name="runward:python:import", value=imp) for imp in pkg.imports]
    return Component(
        name=pkg.name,
        version=pkg.version,
        type=ComponentType.LIBRARY,
        purl=PackageURL("pypi", name=pkg.name, version=pkg.version),
        bom_ref=f"pypi:{pkg.name}@{pkg.version or 'unknown'}",
        properties=props,
        evidence=ComponentEvidence(identity=identity, occurrences=occurrences),
    )


def _native_library(lib: NativeLibrary) -> Component:
    props = [Property(name="runward:native:path", value=lib.path)]
    if lib.package:
        props.append(Property(name="runward:native:vendored-by", value=lib.package))
    return Component(
        name=lib.name,
        type=ComponentType.LIBRARY,
        bom_ref=f"native:{lib.path}",
        properties=props,
        evidence=_opened("shared object", lib.path, "0.9"),
    )


def _model_file(artifact: ModelFile) -> Component:
    props = [
        Property(name="runward:model:format", value=artifact.format),
        Property(name="runward:model:path", value=artifact.path),
    ]
    return Component(
        name=artifact.name,
        version=artifact.revision,
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=f"model-file:{artifact.path}",
        properties=props,
        evidence=_opened("model artifact", artifact.path, "0.8"),
    )


def _opened(what: str, path: str, confidence: str) -> ComponentEvidence:
    """A file the agent opened as the evidence of a component's name."""
    return ComponentEvidence(
        identity=[_identity(IdentityField.NAME, confidence, f"{what} opened: {path}")],
        occurrences=[Occurrence(location=path)],
    )


def _served_model(provider: str, requested: str | None, served: list[str]) -> Component:
    props = [Property(name="runward:model:provider", value=provider)]
    if requested:
        props.append(Property(name="runward:model:requested", value=requested))
    props += [Property(name="runward:model:served", value=s) for s in served]
    return Component(
        name=(served or [requested or "unknown"])[-1],
        group=provider,
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=_model_ref(provider, requested, served),
        properties=props,
        evidence=ComponentEvidence(
            identity=[
                _identity(
                    IdentityField.NAME,
                    "1",
                    f"LLM call: requested {requested or '-'}, served {', '.join(served) or '-'}",
                )
            ]
        ),
    )


def _model_ref(provider: str, requested: str | None, served: list[str]) -> str:
    return f"model:{provider}/{requested or (served or ['?'])[0]}"


def _function_tool(t: ToolRegistration) -> Service:
    """A tool of the agent's own code (no MCP server): a service of its own, never `mcp-server:local`."""
    return Service(
        name=t.tool,
        bom_ref=f"function-tool:{t.tool}",
        x_trust_boundary=False,
        properties=[
            Property(name="runward:tool:kind", value="function"),
            Property(name="runward:first-seen", value=t.first_seen.isoformat()),
        ],
    )


def _mcp_server(name: str, server: McpServer, tools: list[ToolRegistration]) -> Service:
    """The MCP server `name` with its `tools` (sorted by name)."""
    return Service(
        name=name,
        bom_ref=f"mcp-server:{name}",
        properties=[
            Property(name="runward:mcp:registered", value=_when(server.at_startup)),
            Property(name="runward:mcp:initialize-seen", value=str(server.initialized).lower()),
            Property(name="runward:first-seen", value=server.first_seen.isoformat()),
        ],
        services=[
            Service(
                name=t.tool,
                group=name,
                bom_ref=f"mcp-tool:{name}/{t.tool}",
                properties=[
                    Property(name="runward:mcp:registered", value=_when(t.at_startup)),
                    Property(name="runward:mcp:registered-via", value=t.via),
                    Property(name="runward:first-seen", value=t.first_seen.isoformat()),
                ],
            )
            for t in tools
        ],
    )


def _endpoint_service(
    host: str,
    port: int | None,
    protocol: str,
    kind: str,
    addresses: Iterable[str],
    dns_name: str | None,
    declared: bool = False,
    provider: str | None = None,
) -> Service:
    props = [Property(name="runward:endpoint:kind", value=kind)]
    if provider:
        props.append(Property(name="runward:model:provider", value=provider))
    props += [Property(name="runward:endpoint:address", value=a) for a in addresses]
    if dns_name:
        props.append(Property(name="runward:endpoint:dns-name", value=dns_name))
    ref = f"endpoint:{host}:{port}/{protocol}" if port else f"endpoint:{host}"
    uris = [XsUri(_uri(host, port, protocol))] if _HOSTNAME.match(host) else []
    return Service(
        name=host,
        bom_ref=ref,
        endpoints=uris,
        x_trust_boundary=kind not in {"local", "infrastructure"},
        properties=props,
        description="declared egress" if declared else None,
    )


def _uri(host: str, port: int | None, protocol: str) -> str:
    if port == 443:
        return f"https://{host}"
    if port == 80:
        return f"http://{host}"
    return f"{protocol}://{host}:{port}" if port else f"https://{host}"


def _when(at_startup: bool) -> str:
    return "startup" if at_startup else "after-startup"


# --- declared (lifecycle build) --------------------------------------------------------------


def declared_cyclonedx(declared: DeclaredBom, revision: int = 1, created_at: datetime | None = None) -> dict[str, Any]:
    bom, root = _new_bom(declared.deployment, LifecyclePhase.BUILD, revision, created_at)
    components: list[Component] = [_image(image, _MANIFEST) for image in declared.images]
    for pkg in sorted(declared.packages.values(), key=lambda p: p.name):
        components.append(
            Component(
                name=pkg.name,
                version=pkg.version,
                type=ComponentType.LIBRARY,
                purl=PackageURL("pypi", name=pkg.name, version=pkg.version),
                bom_ref=f"pypi:{pkg.name}@{pkg.version or 'unpinned'}",
                properties=[Property(name="runward:declared:source", value=pkg.source)]
                + ([Property(name="runward:declared:specifier", value=pkg.specifier)] if pkg.specifier else []),
            )
        )
    seen_models: set[str] = set()
    for model in declared.models:
        ref = f"model:{model.provider or 'unknown'}/{model.name}"
        if ref in seen_models:
            continue
        seen_models.add(ref)
        components.append(
            Component(
                name=model.name,
                group=model.provider,
                type=ComponentType.MACHINE_LEARNING_MODEL,
                bom_ref=ref,
                properties=[Property(name="runward:declared:source", value=model.source)],
            )
        )
    for component in components:
        bom.components.add(component)
    for server in declared.mcp_servers.values():
        props = [Property(name="runward:mcp:transport", value=server.transport)]
        if server.command or server.url:
            props.append(Property(name="runward:mcp:launch", value=command_line(server)))
        if server.package:
            props.append(Property(name="runward:mcp:package", value=server.package))
        bom.services.add(
            Service(
                name=server.name,
                bom_ref=f"mcp-server:{server.name}",
                properties=props,
                endpoints=[XsUri(server.url)] if server.url else [],
                services=[
                    Service(name=t, group=server.name, bom_ref=f"mcp-tool:{server.name}/{t}")
                    for t in server.tools or []
                ],
            )
        )
    for host in declared.endpoints:
        bom.services.add(_endpoint_service(host, None, "https", "declared", [], None, declared=True))
    bom.register_dependency(root, components)
    document = _serialise(bom)
    _add_model_cards(
        document,
        {f"model:{m.provider or 'unknown'}/{m.name}": _api_model_card(m.provider, m.name, []) for m in declared.models},
    )
    return validate(document, declared.deployment)


# --- shared ----------------------------------------------------------------------------------


def _new_bom(
    deployment: str, phase: LifecyclePhase, revision: int, created_at: datetime | None
) -> tuple[Bom, Component]:
    # One serial per agent and lifecycle, the revision as BOM version: consumers see one
    # document evolving, and a redelivered revision is byte-identical.
    bom = Bom(serial_number=uuid.uuid5(_SERIALS, f"{deployment}:{phase.value}"), version=revision)
    if created_at is not None:
        bom.metadata.timestamp = created_at
    bom.metadata.lifecycles = [PredefinedLifecycle(phase)]
    bom.metadata.tools.components.add(
        Component(name="runward", group="runward", type=ComponentType.APPLICATION, bom_ref="tool:runward")
    )
    namespace, _, name = deployment.partition("/")
    root = Component(
        name=name,
        group=namespace,
        type=ComponentType.APPLICATION,
        bom_ref=f"deployment:{deployment}",
        properties=[Property(name="runward:deployment", value=deployment)],
    )
    bom.metadata.component = root
    return bom, root


def _image(ref: str, technique: AnalysisTechnique) -> Component:
    name, digest = ref.split("@", 1) if "@" in ref else (ref, None)
    repo, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", None)
    props = [Property(name="runward:image", value=ref)]
    if digest:
        props.append(Property(name="runward:image:digest", value=digest))
    return Component(
        name=repo,
        version=tag or digest,
        type=ComponentType.CONTAINER,
        bom_ref=f"image:{ref}",
        properties=props,
        evidence=ComponentEvidence(identity=[_identity(IdentityField.NAME, "1", f"image {ref}", technique)]),
    )


def _identity(
    field: IdentityField, confidence: str, value: str, technique: AnalysisTechnique = _INSTRUMENTED
) -> Identity:
    return Identity(
        field=field,
        confidence=Decimal(confidence),
        methods=[Method(technique=technique, confidence=Decimal(confidence), value=value)],
    )


def _api_model_card(provider: str | None, requested: str | None, served: list[str]) -> dict[str, Any]:
    props = [{"name": "runward:model:provider", "value": provider or "unknown"}]
    if requested:
        props.append({"name": "runward:model:requested", "value": requested})
    props += [{"name": "runward:model:served", "value": s} for s in served]
    return {
        "modelParameters": {"task": "text-generation", "inputs": [{"format": "text"}], "outputs": [{"format": "text"}]},
        "properties": props,
    }


def _file_model_card(fmt: str, hf_repo: str | None, revision: str | None) -> dict[str, Any]:
    props = [{"name": "runward:model:format", "value": fmt}]
    if hf_repo:
        props.append({"name": "runward:model:huggingface-repo", "value": hf_repo})
    if revision:
        props.append({"name": "runward:model:revision", "value": revision})
    return {"properties": props}


def _add_model_cards(document: dict[str, Any], cards: dict[str, dict[str, Any]]) -> None:
    for component in document.get("components", []):
        card = cards.get(component.get("bom-ref", ""))
        if card and component.get("type") == "machine-learning-model":
            component["modelCard"] = card


def _serialise(bom: Bom) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library warns about unknown dependency graphs; ours is set
        text = JsonV1Dot6(bom).output_as_string()
    document: dict[str, Any] = json.loads(text)
    return document


# Subtrees the validator checks once per distinct content: a revision repeats nearly all of the
# previous one's components, services and dependency entries, and their strict check was most of
# a revision's validation. The rest of the document (metadata, the arrays themselves with their
# uniqueItems) is checked in full every time.
_MEMOISED_REFS = frozenset({"#/definitions/component", "#/definitions/service", "#/definitions/dependency"})


class _ValidSubtrees:
    """Digests of the subtrees the validator found valid, the most recently used first to stay."""

    MAX = 65_536

    def __init__(self) -> None:
        self._digests: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()  # the handler validates on one thread; a CLI or test may not

    def __contains__(self, digest: bytes) -> bool:
        with self._lock:
            if digest not in self._digests:
                return False
            self._digests.move_to_end(digest)
            return True

    def add(self, digest: bytes) -> None:
        with self._lock:
            self._digests[digest] = None
            while len(self._digests) > self.MAX:
                self._digests.popitem(last=False)


def _memoised_ref(valid: _ValidSubtrees) -> Callable[[Any, str, Any, dict[str, Any]], Iterator[Any]]:
    """The `$ref` keyword, remembering which component, service and dependency subtrees it found valid.

    A subtree's validity against a subschema depends only on the two, so a subtree whose
    canonical JSON digest passed the same `$ref` before passes again; only successes are kept
    (an invalid subtree is checked, and refused, every time), by digest (never the text)."""

    def ref(validator: Any, ref: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
        if ref not in _MEMOISED_REFS or not isinstance(instance, dict):
            yield from validator._validate_reference(ref=ref, instance=instance)
            return
        canonical = json.dumps(instance, sort_keys=True, separators=(",", ":"))
        # The schema holding the `$ref` fixes what it resolves to (its resource and base URI).
        digest = hashlib.sha256(f"{id(schema)}\0{ref}\0{canonical}".encode()).digest()
        if digest in valid:
            return
        failed = False
        for error in validator._validate_reference(ref=ref, instance=instance):
            failed = True
            yield error
        if not failed:
            valid.add(digest)

    return ref


def _unique_items(
    original: Callable[[Any, Any, Any, dict[str, Any]], Iterator[Any]],
) -> Callable[[Any, Any, Any, dict[str, Any]], Iterator[Any]]:
    """The `uniqueItems` keyword, first ruling out duplicates among objects cheaply.

    The library compares every pair of items (objects cannot be sorted): the square of a BOM's
    components, most of a large BOM's validation. Two objects the schema calls equal have the
    same keys and the same string values, so when no two items agree on those none is a
    duplicate; otherwise the original keyword decides (and words the error)."""

    def unique_items(validator: Any, unique: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
        if unique and isinstance(instance, list) and all(isinstance(item, dict) for item in instance):
            fingerprints = {
                (frozenset(item), frozenset((k, v) for k, v in item.items() if isinstance(v, str))) for item in instance
            }
            if len(fingerprints) == len(instance):
                return
        yield from original(validator, unique, instance, schema)

    return unique_items


@functools.cache
def _validator() -> Any:
    """The library's strict CycloneDX 1.6 validator (its schema, registry and format checker),
    with `$ref` remembering the subtrees it found valid.

    One per process: a validator loads and compiles the CycloneDX schemas (several MB) on first use.
    """
    checker = Draft7Validator.FORMAT_CHECKER
    for name in ("iri", "iri-reference", "uri", "uri-reference"):
        if name in checker.checkers:
            check, raises = checker.checkers[name]
            checker.checkers[name] = (_memoised(check), raises)
    strict = JsonStrictValidator(SchemaVersion.V1_6)._validator
    keywords = {
        "$ref": _memoised_ref(_ValidSubtrees()),
        "uniqueItems": _unique_items(type(strict).VALIDATORS["uniqueItems"]),
    }
    memoising = validators.extend(type(strict), keywords)
    return memoising(strict.schema, registry=strict._registry, format_checker=strict.format_checker)


def _memoised(check: Callable[[object], bool]) -> Callable[[object], bool]:
    """An IRI check remembered per string: the checker parses each with a general (Earley)
    grammar, most of a revision's cost, and a BOM's IRIs repeat from revision to revision."""
    cached = functools.lru_cache(maxsize=65_536)(check)

    def checked(instance: object) -> bool:
        return bool(cached(instance)) if isinstance(instance, str) else bool(check(instance))

    return checked


def validate(document: dict[str, Any], deployment: str) -> dict[str, Any]:
    """`document` if it validates against the strict CycloneDX 1.6 schema; InvalidBom if not."""
    error = next(_validator().iter_errors(document), None)
    if error is not None:
        raise InvalidBom(
            f"AI-BOM for {deployment} does not validate against CycloneDX 1.6: {JsonValidationError(error)}"
        )
    return document
