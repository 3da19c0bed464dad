"""Declared-vs-observed AI-BOM delta: where agent supply-chain incidents show up.

Pure. A finding category is only evaluated when the declaration covers it (no requirements
submitted means no undeclared-package findings), so a partial declaration is not noise.
"""

from __future__ import annotations

import ipaddress
import re
from fnmatch import fnmatchcase

from packaging.version import InvalidVersion, Version

from runward.core.contracts import BomFinding
from services.bom.declared import DeclaredBom
from services.bom.evidence import Endpoint, ModelUse, RuntimeEvidence, observed_packages

# Provider snapshot suffixes: gpt-4o-2024-08-06, claude-3-5-sonnet-20241022, gpt-4-0613, x@001.
_SNAPSHOT = re.compile(r"^[-@](?:\d{4}-?\d{2}-?\d{2}|\d{3,4}|v?\d+(?:\.\d+)*|latest|preview)$")
_PINNED = re.compile(r"(?:[-@](?:\d{4}-?\d{2}-?\d{2}|\d{3,4}))$")


def compute_delta(declared: DeclaredBom, evidence: RuntimeEvidence | None) -> list[BomFinding]:
    if evidence is None:
        return []
    findings: list[BomFinding] = []
    if declared.has_requirements or declared.modules:
        findings += _packages(declared, evidence)
    findings += _models(declared, evidence)
    findings += _tools(declared, evidence)
    if declared.has_manifest or declared.has_mcp_config:
        findings += _endpoints(declared, evidence)
    return sorted(findings, key=lambda f: (f.kind, f.subject))


def _packages(declared: DeclaredBom, evidence: RuntimeEvidence) -> list[BomFinding]:
    findings = []
    observed = observed_packages(evidence, known_names=list(declared.packages))
    declared_modules = set(declared.modules)
    for pkg in observed:
        pin = declared.packages.get(pkg.name)
        if pin is None:
            if pkg.imported and not declared_modules.intersection(pkg.imports):
                findings.append(
                    BomFinding(
                        kind="undeclared_package",
                        subject=pkg.name,
                        observed=pkg.version,
                        detail=f"imported as {', '.join(pkg.imports)} from {pkg.site}; not in the declared "
                        "requirements (a missing pin or an unpinned transitive dependency)",
                    )
                )
            continue
        if pin.version and pkg.version and not _same_version(pin.version, pkg.version):
            findings.append(
                BomFinding(
                    kind="version_drift",
                    subject=pkg.name,
                    declared=pin.version,
                    observed=pkg.version,
                    detail=f"{pkg.dist_info} loaded, {pin.name}=={pin.version} declared",
                )
            )
    if evidence.python_imports:  # only once Python activity is observed at all
        seen = {p.name for p in observed}
        for name, pin in sorted(declared.packages.items()):
            if name not in seen:
                findings.append(
                    BomFinding(
                        kind="declared_not_loaded",
                        subject=name,
                        declared=pin.version,
                        detail=f"declared ({pin.source}) but not imported so far",
                    )
                )
    return findings


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _models(declared: DeclaredBom, evidence: RuntimeEvidence) -> list[BomFinding]:
    names = {m.name for m in declared.models}
    if not names:
        return []
    pins = ", ".join(sorted(names))
    findings = []
    for use in evidence.models.values():
        label = f"{use.provider}/{use.requested or (use.served or ['?'])[0]}"
        match = next((d for d in sorted(names) if use.requested and same_model(d, use.requested)), None)
        if use.requested and match is None:
            findings.append(
                BomFinding(
                    kind="model_drift",
                    subject=label,
                    declared=pins,
                    observed=use.requested,
                    detail="the agent requests a model its deployment does not declare",
                )
            )
            continue
        for served in use.served:
            wanted = match or next((d for d in sorted(names) if same_model(d, served)), None)
            if wanted is None or not same_model(wanted, served):
                findings.append(
                    BomFinding(
                        kind="model_drift",
                        subject=label,
                        declared=wanted or pins,
                        observed=served,
                        detail=_served_detail(use, wanted),
                    )
                )
    return findings


def same_model(declared: str, observed: str) -> bool:
    """An alias (gpt-4o) is satisfied by its snapshots (gpt-4o-2024-08-06); a pinned snapshot only
    by itself. `gpt-4o-mini` is another model, not a snapshot of `gpt-4o`."""
    d, o = declared.lower(), observed.lower()
    if d == o:
        return True
    if _PINNED.search(d):
        return False
    return o.startswith(d) and bool(_SNAPSHOT.match(o[len(d) :]))


def _served_detail(use: ModelUse, wanted: str | None) -> str:
    if wanted is None:
        return "the provider served a model the deployment does not declare"
    return f"requested {use.requested or '-'}, pinned {wanted}, but the provider resolved it to another model"


def _tools(declared: DeclaredBom, evidence: RuntimeEvidence) -> list[BomFinding]:
    findings = []
    for key, tool in sorted(evidence.tools.items()):
        if not tool.at_startup:
            findings.append(
                BomFinding(
                    kind="late_tool",
                    subject=key,
                    observed=tool.first_seen.isoformat(),
                    detail=f"registered after startup (seen via {tool.via})",
                )
            )
        server = declared.mcp_servers.get(tool.server)
        if (
            server is not None
            and server.tools is not None
            and not any(fnmatchcase(tool.tool, pattern) for pattern in server.tools)
        ):
            findings.append(
                BomFinding(
                    kind="undeclared_tool",
                    subject=key,
                    declared=", ".join(server.tools),
                    detail=f"MCP server {tool.server} offers a tool its configuration omits",
                )
            )
    if declared.has_mcp_config:
        for name, seen in sorted(evidence.mcp_servers.items()):
            if name not in declared.mcp_servers:
                findings.append(
                    BomFinding(
                        kind="undeclared_mcp_server",
                        subject=name,
                        observed=seen.first_seen.isoformat(),
                        detail=f"not in the MCP configuration ({'startup' if seen.at_startup else 'after startup'})",
                    )
                )
    return findings


def _endpoints(declared: DeclaredBom, evidence: RuntimeEvidence) -> list[BomFinding]:
    findings = []
    for key, endpoint in sorted(evidence.endpoints.items()):
        if endpoint.kind in {"infrastructure", "local"} or endpoint_declared(endpoint, declared.endpoints):
            continue
        findings.append(
            BomFinding(
                kind="undeclared_endpoint",
                subject=key,
                observed=", ".join(endpoint.addresses) or None,
                detail=f"{endpoint.kind} endpoint not declared (env URLs, {'runward.io/egress'} annotation, "
                "model providers or MCP server URLs)"
                + ("" if endpoint.dns_name else "; only an address was seen, no DNS name"),
            )
        )
    return findings


def endpoint_declared(endpoint: Endpoint, patterns: list[str]) -> bool:
    names = [n.lower() for n in (endpoint.dns_name, endpoint.host) if n]
    for pattern in patterns:
        host, _, port = pattern.rpartition(":") if _has_port(pattern) else (pattern, "", "")
        if port and int(port) != endpoint.port:
            continue
        if "/" in host:  # CIDR
            try:
                network = ipaddress.ip_network(host, strict=False)
            except ValueError:
                continue
            if any(_in(network, a) for a in endpoint.addresses):
                return True
        elif any(fnmatchcase(n, host.lower()) for n in names) or host in endpoint.addresses:
            return True
    return False


def _has_port(pattern: str) -> bool:
    head, sep, tail = pattern.rpartition(":")
    return bool(sep) and tail.isdigit() and ":" not in head


def _in(network: ipaddress.IPv4Network | ipaddress.IPv6Network, address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:
        return False
