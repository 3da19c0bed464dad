"""CLI hooks for Pillar 1's producers: `runward declare`, `runward gateway`, `runward otlp`.

The main CLI calls `add_commands(subparsers)`; each command's `func` takes the argparse
namespace and returns an exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runward.core.contracts import DeclaredManifest, utcnow
from runward.core.contracts.common import deployment_id


def add_commands(subparsers: Any) -> None:
    declare = subparsers.add_parser(
        "declare",
        help="publish what an agent is supposed to load (declared AI-BOM input)",
        description="Read the agent's Deployment manifest, requirements or lock file and MCP client "
        "configuration, and publish them to runward.declared for the AI-BOM delta.",
    )
    declare.add_argument("--deployment", required=True, metavar="NS/NAME")
    declare.add_argument("--manifest", type=Path, help="Deployment YAML (multi-document files are fine)")
    declare.add_argument(
        "--requirements",
        type=Path,
        action="append",
        help="requirements.txt, pyproject.toml or a lock file (poetry.lock, uv.lock, "
        "pylock.toml, Pipfile.lock); repeatable",
    )
    declare.add_argument("--mcp-config", type=Path, help="MCP client configuration (mcpServers JSON)")
    declare.add_argument("--kafka", metavar="BOOTSTRAP", help="bootstrap servers (default RUNWARD_KAFKA)")
    declare.add_argument("--dry-run", action="store_true", help="print the declared CycloneDX BOM, publish nothing")
    declare.set_defaults(func=cmd_declare)

    from edges.gateway.cli import add_arguments, run

    gateway = subparsers.add_parser(
        "gateway",
        help="run the MCP gateway (stdio or streamable HTTP) in front of an MCP server",
        description="Proxy one MCP server for one agent: record initialize, tools/list and tools/call "
        "on runward.raw.llm and enforce the agent's tool allowlist.",
    )
    add_arguments(gateway)
    gateway.set_defaults(func=run)

    receiver = subparsers.add_parser(
        "otlp", help="run the OTLP/HTTP receiver for GenAI/MCP traces (and Falco/Tetragon webhooks)"
    )
    receiver.add_argument("--host", default="127.0.0.1")
    receiver.add_argument("--port", type=int, default=4318)
    receiver.add_argument("--config", type=Path, help="YAML/JSON: senders (IP -> NS/NAME), capture_off")
    receiver.add_argument(
        "--sender",
        action="append",
        default=[],
        metavar="IP=NS/NAME",
        help="attribute telemetry from this IP to a Deployment (repeatable)",
    )
    receiver.add_argument(
        "--no-capture",
        action="append",
        default=[],
        metavar="NS/NAME",
        help="drop prompts, responses and tool arguments of this agent (repeatable)",
    )
    receiver.add_argument("--kafka", metavar="BOOTSTRAP", help="bootstrap servers (default RUNWARD_KAFKA)")
    receiver.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    receiver.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    receiver.add_argument(
        "--client-ca",
        type=Path,
        help="require client certificates signed by this CA (mutual TLS): a verified certificate "
        "authenticates a sender without a bearer token",
    )
    receiver.set_defaults(func=cmd_otlp)


def build_declared(args: argparse.Namespace) -> DeclaredManifest:
    from services.bom.declared import load_deployment_yaml, redact_mcp_config, requirements_from_text

    namespace, _, name = str(args.deployment).partition("/")
    deployment = deployment_id(namespace, name)
    manifest = None
    if args.manifest:
        manifest = load_deployment_yaml(args.manifest.read_text(), deployment)
    requirements: list[str] = []
    for path in args.requirements or []:
        requirements += requirements_from_text(path.name, path.read_text())
    mcp_config = None
    if args.mcp_config:
        try:
            mcp_config = redact_mcp_config(json.loads(args.mcp_config.read_text()))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{args.mcp_config}: not JSON: {exc}") from None
    return DeclaredManifest(
        deployment=deployment,
        submitted_at=utcnow(),
        deployment_manifest=manifest,
        requirements=requirements,
        mcp_config=mcp_config,
    )


def cmd_declare(args: argparse.Namespace) -> int:
    from services.bom.cyclonedx_bom import declared_cyclonedx
    from services.bom.declared import declared_bom

    try:
        record = build_declared(args)
        declared = declared_bom(record)  # fail here, not in the bom stage's dead-letter topic
    except (ValueError, OSError) as exc:
        print(f"runward declare: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(json.dumps(declared_cyclonedx(declared), indent=2))
        return 0
    from edges.intake.publish import DeliveryError, RawPublisher
    from runward.core.config import Settings
    from runward.core.topics import DECLARED

    publisher = RawPublisher(args.kafka or Settings().kafka, "runward-declare")
    try:
        publisher.send(DECLARED, record.deployment, record).result(timeout=30)
    except (DeliveryError, TimeoutError) as exc:
        print(f"runward declare: not published: {exc}", file=sys.stderr)
        return 1
    finally:
        publisher.close(timeout_s=5)
    print(
        f"declared {record.deployment}: {len(declared.images)} image(s), {len(declared.packages)} package(s), "
        f"{len(declared.models)} model(s), {len(declared.mcp_servers)} MCP server(s), "
        f"{len(declared.endpoints)} endpoint pattern(s)"
    )
    return 0


def cmd_otlp(args: argparse.Namespace) -> int:
    from edges.intake.config import SourceConfig
    from edges.intake.otlp_receiver import TlsFiles, serve
    from runward.core.auth import TokenConfigError
    from runward.core.config import Settings

    try:
        config = SourceConfig.load(args.config) if args.config else SourceConfig()
        senders = dict(config.senders)
        for item in args.sender:
            ip, sep, deployment = item.partition("=")
            if not sep:
                raise ValueError(f"--sender {item!r}: expected IP=NS/NAME")
            senders[ip] = deployment
        config = SourceConfig.model_validate(
            {**config.model_dump(), "senders": senders, "capture_off": [*config.capture_off, *args.no_capture]}
        )
    except (ValueError, OSError) as exc:
        print(f"runward otlp: {exc}", file=sys.stderr)
        return 2
    tls = None
    if args.tls_cert or args.tls_key or args.client_ca:
        if not (args.tls_cert and args.tls_key):
            print("runward otlp: --tls-cert and --tls-key go together (and --client-ca needs both)", file=sys.stderr)
            return 2
        tls = TlsFiles(args.tls_cert, args.tls_key, args.client_ca)
    settings = Settings(kafka=args.kafka) if args.kafka else Settings()
    print(
        f"runward otlp: POST http://{args.host}:{args.port}/v1/traces (also /v1/falco, /v1/tetragon, /v1/k8s-audit; "
        "Authorization: Bearer <sender token>) "
        f"-> {settings.kafka}",
        file=sys.stderr,
    )
    try:
        serve(settings, args.port, config, host=args.host, tls=tls)
    except TokenConfigError as exc:
        print(f"runward otlp: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runward.control.edge_commands")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
