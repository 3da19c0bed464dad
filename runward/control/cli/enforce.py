"""Enforce on one machine: `runward prove` and `runward run [--enforce]`.

`runward run` starts a workload observed by the sensor (sensor.cli) and records its command
line, so that `runward prove NS/NAME` can replay it under runc with the agent's candidate
enforce-mode policies (edges/runc) and submit the result to the API, which signs it for the
enforcer. `runward run --enforce` runs the workload under runc with its latest policy bundle:
the seccomp profile and the egress allowlist the bundle carries, enforced by the kernel, and the
bundle's tool policy, applied by the MCP tool gateway in front of each `--mcp NAME=COMMAND`
server. The agent finds each gateway in RUNWARD_MCP_<NAME>_URL, observed or enforced alike; the
servers run on the host, outside the jail (edges/gateway/hosted.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from runward.control.cli.common import Failure, err, out
from runward.control.cli.golive import AgentArg, ApiOpt, TokenOpt, _agent_path, _call, _detail

PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}
NOT_PROVEN = 1


def _home() -> Path:
    """RUNWARD_HOME as the environment says now (where `runward run` recorded the workload)."""
    from runward.core.config import Settings

    return Settings().home.resolve()


def _require_runc() -> None:
    from edges.runc.audit import audit_available
    from edges.runc.prove import runc_available

    problem = runc_available() or audit_available()
    if problem is not None:
        raise Failure(f"runc cannot enforce here: {problem} (root, runc and libseccomp2 are needed)", code=2)


def _get(api: str | None, token: str | None, path: str) -> dict[str, Any]:
    response = _call(api, token, "GET", path)
    if response.status_code != 200:
        raise Failure(f"GET {path}: {response.status_code} {_detail(response)}")
    body: dict[str, Any] = response.json()
    return body


def _exec_binaries(apd: Any) -> list[str]:
    """The binaries the APD saw the agent execute: the only ones its rootfs will hold."""
    from runward.core.contracts import Exec, parse_behaviour

    found = (parse_behaviour(key) for key in apd.behaviours.get(Exec.CATEGORY, []))
    return sorted(b.binary for b in found if isinstance(b, Exec))


def _extra(ctx: typer.Context) -> list[str]:
    cmd = list(ctx.args)
    return cmd[1:] if cmd and cmd[0] == "--" else cmd


def _workload(
    agent: str, cmd: list[str], command: str | None, bundle: Path | None, binaries: list[str]
) -> tuple[Any, list[str]]:
    """The workload to prove and its `--mcp` servers (the recorded ones with the recorded command)."""
    from edges.runc import recorded
    from edges.runc.prove import Workload

    if bundle is not None:
        return Workload(bundle=bundle), []
    if command:
        cmd = shlex.split(command)
    if cmd:
        return Workload(command=cmd, binaries=binaries, cwd=str(Path.cwd())), []
    try:
        found = recorded.load(_home(), agent)
    except ValueError as exc:
        raise Failure(str(exc)) from None
    if found is None:
        raise Failure(
            f"no recorded workload for {agent}: run it with `runward run --deployment {agent} ... -- CMD` "
            "first, or give the command (`runward prove NS/NAME -- CMD`) or an OCI bundle (--bundle DIR)",
            code=2,
        )
    return Workload(command=found.command, binaries=binaries, cwd=found.cwd), list(found.mcp)


def _proof_table(proof: Any) -> Table:
    table = Table(title=f"policy proof of {proof.deployment} (APD revision {proof.apd_revision})")
    table.add_column("item")
    table.add_column("value", overflow="fold")
    table.add_row("result", "PASS" if proof.passed else "FAIL")
    table.add_row("runtime", proof.runtime)
    table.add_row("command", shlex.join(proof.command))
    table.add_row("exit code", str(proof.exit_code))
    table.add_row("refused syscalls", ", ".join(proof.refused_syscalls) or "none")
    table.add_row("refused destinations", ", ".join(proof.refused_destinations) or "none")
    table.add_row("egress allowlist", ", ".join(proof.egress_allowlist) or "none")
    table.add_row("runtime syscalls", ", ".join(proof.runtime_syscalls))
    table.add_row("profile sha256", proof.profile_sha256)
    table.add_row("summary", proof.summary)
    return table


def prove(
    ctx: typer.Context,
    agent: AgentArg,
    command: Annotated[
        str | None, typer.Option("--command", help="the workload's command line (default: the recorded one)")
    ] = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", help="an OCI bundle directory to run instead")] = None,
    timeout: Annotated[float, typer.Option(help="seconds the workload may run")] = 120.0,
    submit: Annotated[bool, typer.Option("--submit/--no-submit", help="post the proof to the API")] = True,
    remeasure: Annotated[bool, typer.Option("--remeasure", help="measure runc's own syscalls again")] = False,
    mcp: Annotated[
        list[str] | None,
        typer.Option(
            "--mcp", metavar="NAME=COMMAND", help="the workload's MCP servers (default: the recorded ones), observed"
        ),
    ] = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> int:
    """Run the agent's recorded workload under runc with its candidate enforce-mode seccomp profile and
    egress allowlist; print what was refused and submit the proof. Exit 0 only when it passed."""
    from edges.runc.netns import subnet_for
    from edges.runc.prove import prove as run_proof
    from edges.runc.prove import runtime_syscalls
    from runward.core.contracts import ApdRevision, EnforcementMode
    from services.enforcer.policies import egress_allowlist, seccomp_profile

    path = _agent_path(agent)
    _require_runc()
    apd = ApdRevision.model_validate(_get(api, token, f"{path}/apd"))
    try:
        bundle_revision = _get(api, token, f"{path}/policies").get("apd_revision")
    except Failure:
        bundle_revision = None  # no bundle yet: the proof is of the APD, the enforcer follows
    if bundle_revision is not None and bundle_revision != apd.revision:
        err.print(
            f"note: the latest policy bundle is of APD revision {bundle_revision}; proving revision {apd.revision}"
        )
    try:
        runtime = runtime_syscalls(_home(), refresh=remeasure)
        profile = seccomp_profile(apd, EnforcementMode.ENFORCE, runtime)
        allowlist = egress_allowlist(apd)
        workload, recorded_mcp = _workload(agent, _extra(ctx), command, bundle, _exec_binaries(apd))
        servers = _mcp_servers(mcp if mcp else recorded_mcp)
        proof, _, enforced = run_proof(
            deployment=apd.deployment,
            apd_revision=apd.revision,
            profile=profile,
            runtime=runtime,
            egress_allowlist=allowlist,
            workload=workload,
            subnet=subnet_for(apd.deployment),
            timeout_s=timeout,
            services=_gateway_services(servers, apd.deployment, None, "runward prove", []),
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise Failure(f"the proof could not run: {exc}") from None
    out.print(_proof_table(proof))
    if not proof.passed and enforced.stderr.strip():
        err.print("workload stderr (enforced run, last lines):")
        for line in enforced.stderr.strip().splitlines()[-10:]:
            err.print(f"  {line}")
    if submit:
        response = _call(api, token, "POST", f"{path}/proofs", json=proof.model_dump(mode="json"))
        if response.status_code != 202:
            raise Failure(f"the proof was not recorded: {response.status_code} {_detail(response)}")
        signed = response.json()
        out.print(f"proof recorded and signed by the API (prover {signed['prover']})")
    return 0 if proof.passed else NOT_PROVEN


def _mcp_servers(specs: Sequence[str]) -> list[Any]:
    from edges.gateway.hosted import McpServer

    try:
        return [McpServer.parse(spec) for spec in specs]
    except ValueError as exc:
        raise Failure(str(exc), code=2) from None


def _gateway_sink() -> Any:
    """The gateway's records go where they always go: runward.raw.llm on the configured broker."""
    from edges.gateway.sink import KafkaSink
    from runward.core.config import Settings

    return KafkaSink(Settings().kafka)


GATEWAY_HELP = (
    "the tool gateway could not start; check the --mcp command runs on this host "
    "(give it with an absolute path) and that nothing else holds the address"
)


def _report_tools(gateways: Any, prefix: str) -> None:
    for refusal in gateways.refusals:
        verb = "tool refused" if refusal.refused else "tool would be refused"
        err.print(f"{prefix}: {verb}: {refusal.server}/{refusal.tool} ({refusal.reason})", soft_wrap=True)


def _gateway_services(servers: list[Any], agent: str, bundle: Any, prefix: str, hosted: list[Any]) -> Any:
    """The jail's services for `servers`: a gateway each on the jail's host-side address (the one
    place the workload can reach them from), let through the jail; the started ones go to `hosted`.
    `bundle` None: observe (the proof: its kernel policies are what is proven)."""
    from edges.gateway.hosted import HostedGateways
    from edges.runc.netns import EgressJail

    if not servers:
        return None

    @contextmanager
    def gateways(jail: EgressJail) -> Iterator[list[str]]:
        with HostedGateways(servers, agent, jail.host_ip, _gateway_sink(), bundle) as started:
            hosted.append(started)
            for (_, port), running in zip(started.endpoints, started.running, strict=True):
                jail.allow_service(port)
                err.print(
                    f"{prefix}: MCP server {running.server.name} behind the tool gateway at {running.url} "
                    f"({running.server.env_name}; runward's own service, let through the jail apart from the "
                    "bundle's allowlist)",
                    soft_wrap=True,
                )
            yield started.env

    def services(jail: EgressJail) -> AbstractContextManager[list[str]]:
        return gateways(jail)

    return services


def _bundle_of(agent: str, bundle_file: Path | None, api: str | None, token: str | None) -> tuple[Any, list[str]]:
    """The policy bundle to run under (a file, else the API's latest) and the binaries its APD ran."""
    from runward.core.contracts import ApdRevision, PolicyBundle

    if bundle_file is not None:
        try:
            return PolicyBundle.model_validate(json.loads(bundle_file.read_text())), []
        except (OSError, ValueError) as exc:
            raise Failure(f"{bundle_file}: not a policy bundle ({exc})", code=2) from None
    path = _agent_path(agent)
    bundle = PolicyBundle.model_validate(_get(api, token, f"{path}/policies"))
    return bundle, _exec_binaries(ApdRevision.model_validate(_get(api, token, f"{path}/apd")))


def _enforced(
    agent: str,
    cmd: list[str],
    bundle_file: Path | None,
    api: str | None,
    token: str | None,
    timeout: float,
    mcp: Sequence[str] = (),
) -> int:
    from edges.gateway.hosted import GatewayError
    from edges.runc.netns import subnet_for
    from edges.runc.prove import Workload, enforce, pod_cgroup

    servers = _mcp_servers(mcp)
    _require_runc()
    bundle, binaries = _bundle_of(agent, bundle_file, api, token)
    if bundle.deployment != agent:
        raise Failure(f"the bundle is of {bundle.deployment}, not {agent}", code=2)
    err.print(
        f"runward run --enforce: {agent} under policy bundle r{bundle.revision} ({bundle.mode.value}, APD revision "
        f"{bundle.apd_revision}), {len(bundle.egress_allowlist)} allowed destination(s)"
    )
    # In the agent's own cgroup layout: its audit evidence (seccomp log) is attributed to it.
    workload = Workload(command=cmd, binaries=binaries, cwd=str(Path.cwd()), cgroup=pod_cgroup(agent))
    hosted: list[Any] = []
    services = _gateway_services(servers, agent, bundle, "runward run --enforce", hosted)
    try:
        result = enforce(
            workload,
            bundle.seccomp_profile,
            bundle.egress_allowlist,
            subnet_for(agent),
            timeout_s=timeout,
            services=services,
            deployment=agent,
            # Audit (and observe) lists what enforce would refuse and breaks nothing.
            refuse_egress=bundle.mode.value == "enforce",
        )
    except GatewayError as exc:
        raise Failure(f"runward run --enforce: {exc} ({GATEWAY_HELP}); the workload was not started") from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise Failure(f"the workload could not run under runc: {exc}") from None
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    verb = "refused" if bundle.mode.value == "enforce" else "would refuse"
    if result.refused_syscalls:
        err.print(f"runward run --enforce: seccomp {verb}: {', '.join(result.refused_syscalls)}")
    if result.refused_destinations:
        egress = "egress refused" if bundle.mode.value == "enforce" else "egress would be refused"
        err.print(f"runward run --enforce: {egress}: {', '.join(result.refused_destinations)}")
    for started in hosted:
        _report_tools(started, "runward run --enforce")
    if result.exit_code is None:
        err.print(f"runward run --enforce: killed after {timeout:g}s")
        return 124
    return result.exit_code


def run(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Option(metavar="NS/NAME", help="the Deployment the replicas belong to")],
    service_account: Annotated[str, typer.Option(metavar="SA", help="the ServiceAccount they run as")],
    replicas: Annotated[int, typer.Option(help="how many replicas (one cgroup each; observe only)")] = 1,
    enforce: Annotated[
        bool, typer.Option("--enforce", help="run under runc with the agent's latest policy bundle")
    ] = False,
    bundle_file: Annotated[
        Path | None, typer.Option("--bundle-file", help="with --enforce: a PolicyBundle JSON instead of the API's")
    ] = None,
    timeout: Annotated[float, typer.Option(help="with --enforce: seconds the workload may run")] = 3600.0,
    mcp: Annotated[
        list[str] | None,
        typer.Option(
            "--mcp",
            metavar="NAME=COMMAND",
            help="a stdio MCP server, reached through the tool gateway at RUNWARD_MCP_<NAME>_URL (repeatable)",
        ),
    ] = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> int:
    """Start CMD as REPLICAS replicas in their own cgroups, attributed to the Deployment for the sensor,
    and record it for `runward prove`; with --enforce, run it under runc and its policy bundle instead."""
    from sensor.cli import cmd_run

    cmd = _extra(ctx)
    if not cmd:
        raise Failure(f"give the command after --, e.g. runward run --deployment {deployment} -- python agent.py", 2)
    if enforce:
        return _enforced(deployment, cmd, bundle_file, api, token, timeout, mcp or ())
    servers = _mcp_servers(mcp or ())
    args = argparse.Namespace(deployment=deployment, service_account=service_account, replicas=replicas, cmd=cmd)
    if not servers:
        _record(deployment, service_account, cmd, [])
        return cmd_run(args)
    return _observed_with_gateway(deployment, servers, args, mcp or [])


def _record(deployment: str, service_account: str, cmd: list[str], mcp: list[str]) -> None:
    """The workload as observed, for `runward prove` (only once it is about to run)."""
    from edges.runc import recorded
    from edges.runc.oci import BundleError

    try:
        recorded.record(_home(), deployment, service_account, cmd, mcp=mcp)
    except (BundleError, ValueError, OSError) as exc:
        raise Failure(f"runward run: {exc}") from None


def _observed_with_gateway(deployment: str, servers: list[Any], args: argparse.Namespace, mcp: list[str]) -> int:
    """Observe: the gateways on 127.0.0.1 record every call (no bundle: nothing refused)."""
    from edges.gateway.hosted import GatewayError, HostedGateways
    from sensor.cli import cmd_run

    try:
        gateways = HostedGateways(servers, deployment, "127.0.0.1", _gateway_sink()).__enter__()
    except GatewayError as exc:
        raise Failure(f"runward run: {exc} ({GATEWAY_HELP}); the workload was not started") from None
    saved = {name: os.environ.get(name) for name in (s.env_name for s in servers)}
    try:
        _record(deployment, args.service_account, args.cmd, mcp)
        for running in gateways.running:
            os.environ[running.server.env_name] = running.url  # the replicas inherit it
            err.print(
                f"runward run: MCP server {running.server.name} behind the tool gateway at {running.url} "
                f"({running.server.env_name}; observe: every call recorded)",
                soft_wrap=True,
            )
        return cmd_run(args)
    finally:
        gateways.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _report_tools(gateways, "runward run")


def register(app: typer.Typer) -> None:
    app.command(
        help="prove an agent's enforce-mode policies: its recorded workload under runc (exit 0 only when it passed)",
        context_settings=PASSTHROUGH,
    )(prove)
    app.command(
        help="run a workload in its own cgroup, attributed to a Deployment (--enforce: under runc and its bundle)",
        context_settings=PASSTHROUGH,
    )(run)
