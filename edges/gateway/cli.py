"""`runward gateway`: run the MCP gateway for one MCP server of one agent.

stdio:  runward gateway --deployment NS/NAME --server-name time [--policy P] -- uvx mcp-server-time
HTTP:   runward gateway --deployment NS/NAME --server-name docs --upstream http://docs:8000/mcp --port 8931

The agent's policy bundle (its APD's tools at its promoted mode) is applied when the gateway is
told where to get it: `--api URL` with a viewer token (`RUNWARD_GATEWAY_TOKEN`, or
`--token-file`), or `--bundle-from-topic` (runward.policies); refreshed every `--refresh-s`.
Without a bundle the gateway observes. A hand-written `--policy` allowlist applies as well.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from edges.gateway.bundle import PollingBundle, from_api, from_topic
from edges.gateway.policy import ToolPolicy
from edges.gateway.session import AgentIdentity, GatewaySession
from edges.gateway.sink import KafkaSink
from edges.intake.config import SourceConfig
from runward.core.config import Settings
from runward.core.contracts.common import deployment_id

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deployment",
        default=os.environ.get("RUNWARD_DEPLOYMENT"),
        metavar="NS/NAME",
        help="the agent this gateway serves (env RUNWARD_DEPLOYMENT)",
    )
    parser.add_argument(
        "--pod",
        default=os.environ.get("RUNWARD_POD") or os.environ.get("POD_NAME"),
        help="the agent's pod (env RUNWARD_POD or POD_NAME)",
    )
    parser.add_argument(
        "--server-name",
        help="the server's name in the agent's MCP configuration (default: the name the server reports)",
    )
    parser.add_argument("--policy", type=Path, help="tool policy YAML/JSON (mode, servers.<name>.allow)")
    parser.add_argument("--mode", choices=["observe", "enforce"], help="override the policy's mode")
    parser.add_argument(
        "--api", default=os.environ.get("RUNWARD_API_URL"), help="Runward API to fetch the policy bundle from"
    )
    parser.add_argument(
        "--token-file", type=Path, help="file holding the viewer token for --api (else env RUNWARD_GATEWAY_TOKEN)"
    )
    parser.add_argument(
        "--bundle-from-topic", action="store_true", help="read the policy bundle from runward.policies instead"
    )
    parser.add_argument("--refresh-s", type=float, default=30.0, help="how often the bundle is fetched again")
    parser.add_argument("--no-capture", action="store_true", help="publish metadata only: no tool arguments or results")
    parser.add_argument("--kafka", metavar="BOOTSTRAP", help="bootstrap servers (default RUNWARD_KAFKA)")
    parser.add_argument("--upstream", metavar="URL", help="streamable-HTTP MCP server to front (HTTP mode)")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP mode: listen address")
    parser.add_argument("--port", type=int, default=8931, help="HTTP mode: listen port")
    parser.add_argument("--path", default="/mcp", help="HTTP mode: MCP endpoint path")
    parser.add_argument(
        "cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...", help="stdio mode: the MCP server command"
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=os.environ.get("RUNWARD_LOG_LEVEL", "WARNING"), stream=sys.stderr)
    cmd = list(args.cmd or [])
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    kafka = args.kafka or Settings().kafka
    try:
        agent = _agent(args)
        bundles = _bundles(args, agent.deployment, kafka)
        # Without a bundle and a hand-written allowlist the gateway notes calls as before.
        policy: ToolPolicy | None = ToolPolicy.load(args.policy) if args.policy else None
        if policy is None and (bundles is None or args.mode):
            policy = ToolPolicy()
    except (ValueError, OSError) as exc:
        print(f"runward gateway: {exc}", file=sys.stderr)
        return 2
    if args.mode and policy is not None:
        policy = policy.model_copy(update={"mode": args.mode})
    if bool(cmd) == bool(args.upstream):
        print(
            "runward gateway: give either a server command after -- (stdio) or --upstream URL (HTTP)", file=sys.stderr
        )
        return 2
    config = SourceConfig(capture_off=[agent.deployment] if args.no_capture else [])
    sink = KafkaSink(kafka)

    def new_session() -> GatewaySession:
        return GatewaySession(agent, policy, config, server_name=args.server_name, bundles=bundles)

    if not cmd:
        import uvicorn

        from edges.gateway.streamable_http import HttpGateway

        gateway = HttpGateway(args.upstream, new_session, sink)  # its shutdown flushes the sink
        uvicorn.run(gateway.app(args.path), host=args.host, port=args.port, log_level="warning")
        return 0
    from edges.gateway.stdio import run_stdio

    try:
        return asyncio.run(run_stdio(cmd, new_session(), sink))
    finally:
        undelivered = sink.close()
        if undelivered:
            log.warning("%d gateway records were still undelivered at exit", undelivered)


def _bundles(args: argparse.Namespace, deployment: str, kafka: str) -> PollingBundle | None:
    if args.bundle_from_topic:
        return PollingBundle(from_topic(kafka, deployment), args.refresh_s)
    if not args.api:
        return None
    if args.token_file:
        token = args.token_file.read_text().strip()
    else:
        token = os.environ.get("RUNWARD_GATEWAY_TOKEN", "").strip()
    if not token:
        raise ValueError("--api needs a viewer token: --token-file FILE or RUNWARD_GATEWAY_TOKEN")
    return PollingBundle(from_api(args.api, token, deployment), args.refresh_s)


def _agent(args: argparse.Namespace) -> AgentIdentity:
    if not args.deployment:
        raise ValueError("--deployment NS/NAME (or RUNWARD_DEPLOYMENT) is required: records are the agent's")
    namespace, _, name = str(args.deployment).partition("/")
    return AgentIdentity(deployment_id(namespace, name), args.pod)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edges.gateway", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    args: Any = parser.parse_args(argv)
    return run(args)
