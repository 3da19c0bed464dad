"""Observing agents: `runward declare`, `runward gateway`, `runward otlp` (Pillar 1's producers),
and the sensor's `runward sensor` (`runward run` is in enforce.py: it records the workload)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from runward.control.cli.common import Failure, KafkaOpt, out
from runward.core.contracts import DeclaredManifest, utcnow
from runward.core.contracts.common import deployment_id

# Options after `--` (or unknown ones) are the wrapped command's, not ours.
PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def build_declared(
    deployment: str, manifest: Path | None, requirements: list[Path], mcp_config: Path | None
) -> DeclaredManifest:
    from services.bom.declared import load_deployment_yaml, redact_mcp_config, requirements_from_text

    namespace, _, name = deployment.partition("/")
    agent = deployment_id(namespace, name)
    loaded = load_deployment_yaml(manifest.read_text(), agent) if manifest else None
    packages: list[str] = []
    for path in requirements:
        packages += requirements_from_text(path.name, path.read_text())
    mcp = None
    if mcp_config:
        try:
            mcp = redact_mcp_config(json.loads(mcp_config.read_text()))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{mcp_config}: not JSON: {exc}") from None
    return DeclaredManifest(
        deployment=agent,
        submitted_at=utcnow(),
        deployment_manifest=loaded,
        requirements=packages,
        mcp_config=mcp,
    )


def declare(
    deployment: Annotated[str, typer.Option(metavar="NS/NAME", help="the agent")],
    manifest: Annotated[Path | None, typer.Option(help="Deployment YAML (multi-document files are fine)")] = None,
    requirements: Annotated[
        list[Path] | None,
        typer.Option(
            help="requirements.txt, pyproject.toml or a lock file (poetry.lock, uv.lock, pylock.toml, "
            "Pipfile.lock); repeatable"
        ),
    ] = None,
    mcp_config: Annotated[Path | None, typer.Option(help="MCP client configuration (mcpServers JSON)")] = None,
    kafka: KafkaOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the declared CycloneDX BOM, publish nothing")
    ] = False,
) -> int:
    """Read the agent's Deployment manifest, requirements or lock file and MCP client configuration,
    and publish them to runward.declared for the AI-BOM delta."""
    from services.bom.cyclonedx_bom import declared_cyclonedx
    from services.bom.declared import declared_bom

    try:
        record = build_declared(deployment, manifest, requirements or [], mcp_config)
        declared = declared_bom(record)  # fail here, not in the bom stage's dead-letter topic
    except (ValueError, OSError) as exc:
        print(f"runward declare: {exc}", file=sys.stderr)
        return 1
    if dry_run:
        print(json.dumps(declared_cyclonedx(declared), indent=2))
        return 0
    from edges.intake.publish import DeliveryError, RawPublisher
    from runward.control.broker import BrokerError, require_kafka
    from runward.core.config import Settings
    from runward.core.topics import DECLARED

    config = Settings(kafka=kafka) if kafka else Settings()
    try:
        require_kafka(config.kafka)
    except BrokerError as exc:
        raise Failure(str(exc)) from None
    publisher = RawPublisher(config, "runward-declare")
    try:
        publisher.send(DECLARED, record.deployment, record).result(timeout=30)
    except (DeliveryError, TimeoutError) as exc:
        print(f"runward declare: not published: {exc}", file=sys.stderr)
        return 1
    finally:
        publisher.close(timeout_s=5)
    out.print(
        f"declared {record.deployment}: {len(declared.images)} image(s), {len(declared.packages)} package(s), "
        f"{len(declared.models)} model(s), {len(declared.mcp_servers)} MCP server(s), "
        f"{len(declared.endpoints)} endpoint pattern(s)"
    )
    return 0


def gateway(
    ctx: typer.Context,
    deployment: Annotated[
        str | None,
        typer.Option(envvar="RUNWARD_DEPLOYMENT", metavar="NS/NAME", help="the agent this gateway serves"),
    ] = None,
    pod: Annotated[str | None, typer.Option(envvar=["RUNWARD_POD", "POD_NAME"], help="the agent's pod")] = None,
    server_name: Annotated[
        str | None,
        typer.Option(help="the server's name in the agent's MCP configuration (default: the name the server reports)"),
    ] = None,
    policy: Annotated[Path | None, typer.Option(help="tool policy YAML/JSON (mode, servers.<name>.allow)")] = None,
    mode: Annotated[str | None, typer.Option(help="override the policy's mode: observe or enforce")] = None,
    no_capture: Annotated[
        bool, typer.Option("--no-capture", help="publish metadata only: no tool arguments or results")
    ] = False,
    kafka: KafkaOpt = None,
    upstream: Annotated[
        str | None, typer.Option(metavar="URL", help="streamable-HTTP MCP server to front (HTTP mode)")
    ] = None,
    host: Annotated[str, typer.Option(help="HTTP mode: listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP mode: listen port")] = 8931,
    path: Annotated[str, typer.Option(help="HTTP mode: MCP endpoint path")] = "/mcp",
    api: Annotated[
        str | None,
        typer.Option(envvar="RUNWARD_API_URL", metavar="URL", help="Runward API to fetch the agent's policy bundle"),
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="viewer token for --api (else env RUNWARD_GATEWAY_TOKEN)")
    ] = None,
    bundle_from_topic: Annotated[
        bool, typer.Option("--bundle-from-topic", help="read the policy bundle from runward.policies")
    ] = False,
    refresh_s: Annotated[float, typer.Option(help="how often the policy bundle is fetched again")] = 30.0,
) -> int:
    """Proxy one MCP server for one agent: record initialize, tools/list and tools/call on
    runward.raw.llm and apply the agent's policy bundle (its APD's tools at its promoted mode:
    observe records, audit publishes would-be refusals, enforce refuses) and any hand-written
    allowlist. stdio mode: the server command after --."""
    from edges.gateway.cli import run

    if mode not in (None, "observe", "enforce"):
        raise Failure(f"--mode {mode!r}: expected observe or enforce", code=2)
    args = argparse.Namespace(
        deployment=deployment,
        pod=pod,
        server_name=server_name,
        policy=policy,
        mode=mode,
        no_capture=no_capture,
        kafka=kafka,
        upstream=upstream,
        host=host,
        port=port,
        path=path,
        api=api,
        token_file=token_file,
        bundle_from_topic=bundle_from_topic,
        refresh_s=refresh_s,
        cmd=list(ctx.args),
    )
    return int(run(args))


def otlp(
    host: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="listen port")] = 4318,
    config: Annotated[Path | None, typer.Option(help="YAML/JSON: senders (IP -> NS/NAME), capture_off")] = None,
    sender: Annotated[
        list[str] | None,
        typer.Option(metavar="IP=NS/NAME", help="attribute telemetry from this IP to a Deployment (repeatable)"),
    ] = None,
    no_capture: Annotated[
        list[str] | None,
        typer.Option(
            "--no-capture",
            metavar="NS/NAME",
            help="drop prompts, responses and tool arguments of this agent (repeatable)",
        ),
    ] = None,
    kafka: KafkaOpt = None,
    tls_cert: Annotated[Path | None, typer.Option(help="serve HTTPS with this certificate (PEM)")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="the certificate's private key (PEM)")] = None,
    client_ca: Annotated[
        Path | None,
        typer.Option(
            help="require client certificates signed by this CA (mutual TLS): a verified certificate "
            "authenticates a sender without a bearer token"
        ),
    ] = None,
) -> int:
    """Run the OTLP/HTTP receiver for GenAI/MCP traces (and Falco/Tetragon/audit webhooks)."""
    from edges.intake.config import SourceConfig
    from edges.intake.otlp_receiver import TlsFiles, serve
    from runward.core.auth import TokenConfigError
    from runward.core.config import Settings

    try:
        source = SourceConfig.load(config) if config else SourceConfig()
        senders = dict(source.senders)
        for item in sender or []:
            ip, sep, deployment = item.partition("=")
            if not sep:
                raise ValueError(f"--sender {item!r}: expected IP=NS/NAME")
            senders[ip] = deployment
        source = SourceConfig.model_validate(
            {**source.model_dump(), "senders": senders, "capture_off": [*source.capture_off, *(no_capture or [])]}
        )
    except (ValueError, OSError) as exc:
        print(f"runward otlp: {exc}", file=sys.stderr)
        return 2
    tls = None
    if tls_cert or tls_key or client_ca:
        if not (tls_cert and tls_key):
            print("runward otlp: --tls-cert and --tls-key go together (and --client-ca needs both)", file=sys.stderr)
            return 2
        tls = TlsFiles(tls_cert, tls_key, client_ca)
    settings = Settings(kafka=kafka) if kafka else Settings()
    print(
        f"runward otlp: POST http://{host}:{port}/v1/traces (also /v1/falco, /v1/tetragon, /v1/k8s-audit; "
        f"Authorization: Bearer <sender token>) -> {settings.kafka}",
        file=sys.stderr,
    )
    try:
        serve(settings, port, source, host=host, tls=tls)
    except TokenConfigError as exc:
        print(f"runward otlp: {exc}", file=sys.stderr)
        return 2
    return 0


def watch(ctx: typer.Context) -> int:
    """Watch the cluster's Deployments, ReplicaSets, Pods, ServiceAccounts and RBAC objects and
    publish them on runward.raw.k8s (options: `runward watch --help` lists the watcher's own)."""
    from edges.kubewatch.__main__ import main as watcher_main

    return watcher_main(list(ctx.args))


def register(app: typer.Typer) -> None:
    from sensor.cli import sensor_command

    app.command(help="publish what an agent is supposed to load (declared AI-BOM input)")(declare)
    app.command(
        help="run the MCP gateway (stdio or streamable HTTP) in front of an MCP server",
        context_settings=PASSTHROUGH,
    )(gateway)
    app.command(help="run the OTLP/HTTP receiver for GenAI/MCP traces (and Falco/Tetragon webhooks)")(otlp)
    app.command(
        help="watch the cluster's workload and RBAC objects into runward.raw.k8s (--kubeconfig, --namespace, ...)",
        context_settings={**PASSTHROUGH, "help_option_names": []},
    )(watch)
    # `runward run` is the enforce group's (it records the workload and has --enforce).
    app.command("sensor", help="run the eBPF sensor in the foreground")(sensor_command)
