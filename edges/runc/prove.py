"""The policy proof: the recorded workload under runc, its candidate seccomp profile and allowlist.

Two runs in one egress jail (network namespace + nftables allowlist):

1. the profile with its default action set to `SCMP_ACT_LOG`: nothing is refused, and every
   syscall the profile *would* refuse is an audit record attributed to this run (audit.py);
2. the profile as it would be enforced (`SCMP_ACT_ERRNO`).

Pass = the enforced run exits 0, the logged run shows no would-be-refused syscall, and the jail
refused no destination in either run. The runtime's own needs are measured once per runc
version (`runtime_syscalls`) and cached under RUNWARD_HOME/runc/.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edges.runc import oci
from edges.runc.audit import SeccompAudit
from edges.runc.netns import EgressJail
from runward.core.contracts import PolicyProof
from runward.core.signing import profile_sha256

MEASURE_RUNS = 3
DEFAULT_TIMEOUT_S = 120.0


@dataclass
class RunResult:
    exit_code: int | None
    stdout: str
    stderr: str
    refused_syscalls: list[str] = field(default_factory=list)
    refused_by: dict[str, list[str]] = field(default_factory=dict)
    refused_destinations: list[str] = field(default_factory=list)
    timed_out: bool = False
    services: list[str] = field(default_factory=list)


# Runward's own services for one run (the MCP tool gateway): started once the jail exists, on its
# host-side address, each let through with `jail.allow_service`; yields the env entries that tell
# the workload where they are, and stops them when the workload has exited.
Services = Callable[[EgressJail], AbstractContextManager[Sequence[str]]]


def run_container(
    bundle: Path, audit: SeccompAudit | None = None, timeout_s: float = DEFAULT_TIMEOUT_S, runc: str = "runc"
) -> tuple[int | None, str, str, bool]:
    """`runc run` the bundle to completion (killed after `timeout_s`); exit code, out, err, timed out."""
    container = f"runward-{secrets.token_hex(6)}"
    process = subprocess.Popen(
        [runc, "run", "--bundle", str(bundle), container],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=audit.preexec if audit is not None else None,  # noqa: PLW1509 - sets the audit login id only
    )
    timed_out = False
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        subprocess.run([runc, "kill", container, "KILL"], capture_output=True)
        out, err = process.communicate()
    finally:
        subprocess.run([runc, "delete", "--force", container], capture_output=True)
    return (None if timed_out else process.returncode), out, err, timed_out


def _as_logged(profile: dict[str, Any]) -> dict[str, Any]:
    logged = copy.deepcopy(profile)
    logged["defaultAction"] = "SCMP_ACT_LOG"
    logged.pop("defaultErrnoRet", None)
    return logged


def _measure_created(bundle: Path, runc: str) -> list[str]:
    """The init's needs while it waits to be started, its Go runtime's signal path included.

    With `noNewPrivileges` false (Kubernetes' default, allowPrivilegeEscalation) runc loads the
    filter *before* it waits for `runc start`, so the init's Go runtime runs under it: it is
    preempted by SIGURG and returns from the handler (rt_sigreturn), drops privileges, closes
    fds. A waiting init is sent SIGURG on purpose: a profile missing what that needs kills the
    init (SIGSEGV, exit 139) only when the machine is busy enough for the runtime to preempt.
    """
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["noNewPrivileges"] = False
    (bundle / "config.json").write_text(json.dumps(cfg))
    container = f"runward-measure-{secrets.token_hex(4)}"
    with SeccompAudit() as audit:
        try:
            subprocess.run(
                [runc, "create", "--bundle", str(bundle), container],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # the init keeps its stdio: a pipe here would never close
                stderr=subprocess.DEVNULL,
                preexec_fn=audit.preexec,  # noqa: PLW1509 - sets the audit login id only
                check=True,
                timeout=30,
            )
            pid = int(_state(runc, container).get("pid") or 0)
            for _ in range(5):
                time.sleep(0.05)
                os.kill(pid, signal.SIGURG)
            subprocess.run([runc, "start", container], capture_output=True, check=True, timeout=30)
            deadline = time.monotonic() + 30
            while _state(runc, container).get("status") not in (None, "stopped") and time.monotonic() < deadline:
                time.sleep(0.05)
        except (subprocess.SubprocessError, OSError) as exc:
            raise RuntimeError(f"the measurement container did not run (runc create/start): {exc}") from None
        finally:
            subprocess.run([runc, "delete", "--force", container], capture_output=True)
    return audit.syscalls


def _state(runc: str, container: str) -> dict[str, Any]:
    done = subprocess.run([runc, "state", container], capture_output=True, text=True)
    state: dict[str, Any] = json.loads(done.stdout) if done.returncode == 0 and done.stdout else {}
    return state


def runtime_syscalls(home: Path, runc: str = "runc", refresh: bool = False) -> list[str]:
    """What runc's container init (and a static exec) needs once the seccomp filter is loaded.

    Measured, not guessed: a busybox-static `true` under a profile that allows nothing and logs
    everything, the syscalls of its audit records: run straight through a few times (the Go
    runtime is not fully deterministic), and created, signalled and started (`_measure_created`).
    Cached per runc version under `home`/runc/.
    """
    version = oci.runc_version(runc)
    cache = home / "runc" / f"runtime-syscalls-{version.replace(' ', '-').replace('/', '_')}.json"
    if cache.is_file() and not refresh:
        cached = json.loads(cache.read_text())
        if cached.get("runtime") == version and cached.get("syscalls"):
            return list(cached["syscalls"])
    found: set[str] = set()
    profile = {"defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": []}
    with tempfile.TemporaryDirectory(prefix="runward-measure-") as tmp:
        bundle = Path(tmp)
        oci.make_rootfs(bundle, busybox_only=True)
        (bundle / "config.json").write_text(json.dumps(oci.config(["/usr/bin/busybox", "true"], profile)))
        for _ in range(MEASURE_RUNS):
            with SeccompAudit() as audit:
                code, _, err, _ = run_container(bundle, audit, timeout_s=30, runc=runc)
            if code != 0:
                raise RuntimeError(f"the measurement container did not run under {version}: {err.strip()}")
            found.update(audit.syscalls)
        found.update(_measure_created(bundle, runc))
    if not found:
        raise RuntimeError(
            "no seccomp audit record was seen: check that /proc/sys/kernel/seccomp/actions_logged includes `log`"
        )
    measured = sorted(found)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"runtime": version, "syscalls": measured, "measured_at": _now().isoformat()}))
    return measured


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Workload:
    """The recorded workload: a host command line (rootfs built here) or an OCI bundle directory."""

    command: Sequence[str] = ()
    binaries: Sequence[str] = ()
    bundle: Path | None = None
    env: Sequence[str] = ()
    cwd: str | None = None
    cgroup: str | None = None
    """The container's cgroupsPath; `pod_cgroup` puts it where `runward run` puts an agent's replicas."""

    def describe(self) -> list[str]:
        return list(self.command) if self.command else [f"bundle:{self.bundle}"]


def prepare(workload: Workload, where: Path, seccomp: dict[str, Any] | None, netns: str | None) -> Path:
    """A bundle for one run of the workload under `seccomp` in network namespace `netns`."""
    if workload.bundle is None:
        bundle = oci.write_bundle(
            where,
            workload.command,
            seccomp,
            binaries=workload.binaries,
            netns=netns,
            env=workload.env,
            cwd=workload.cwd,
        )
        if workload.cgroup is not None:
            cfg = json.loads((bundle / "config.json").read_text())
            cfg.setdefault("linux", {})["cgroupsPath"] = workload.cgroup
            (bundle / "config.json").write_text(json.dumps(cfg))
        return bundle
    source = workload.bundle.resolve()
    try:
        cfg = json.loads((source / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise oci.BundleError(f"{source} is not an OCI bundle ({exc})") from None
    root = Path(cfg.get("root", {}).get("path", "rootfs"))
    cfg.setdefault("root", {})["path"] = str(root if root.is_absolute() else source / root)
    if cfg.get("process", {}).get("terminal"):
        cfg["process"]["terminal"] = False
    where.mkdir(parents=True, exist_ok=True)
    (where / "config.json").write_text(json.dumps(cfg))
    oci.with_seccomp(where, seccomp, netns)
    return where


def run_jailed(
    workload: Workload,
    seccomp: dict[str, Any],
    allowlist: Sequence[str],
    subnet: ipaddress.IPv4Network,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    runc: str = "runc",
    services: Services | None = None,
    deployment: str | None = None,
    refuse_egress: bool = True,
) -> RunResult:
    """One run of the workload under `seccomp`, egress limited to `allowlist` (and `services`);
    `refuse_egress=False` (audit) lets other destinations through, logged for `deployment`."""
    with (
        tempfile.TemporaryDirectory(prefix="runward-run-") as tmp,
        EgressJail(allowlist, subnet, deployment=deployment, refuse=refuse_egress) as jail,
        services(jail) if services is not None else nullcontext(()) as env,
    ):
        if env:
            if workload.bundle is not None:
                raise oci.BundleError("runward's services need a workload given as a command, not an OCI bundle")
            workload = replace(workload, env=[*workload.env, *env])
        bundle = prepare(workload, Path(tmp), seccomp, jail.name)
        try:
            with SeccompAudit() as audit:
                code, out, err, timed_out = run_container(bundle, audit, timeout_s, runc)
        finally:
            if workload.cgroup is not None:
                _remove_agent_cgroups(workload.cgroup)
    by: dict[str, set[str]] = {}
    for record in audit.records:
        by.setdefault(record.syscall, set()).add(record.comm)
    return RunResult(
        exit_code=code,
        stdout=out,
        stderr=err,
        refused_syscalls=audit.syscalls,
        refused_by={k: sorted(v) for k, v in sorted(by.items())},
        refused_destinations=jail.refused(),
        timed_out=timed_out,
        services=list(jail.services),
    )


def prove(
    *,
    deployment: str,
    apd_revision: int,
    profile: dict[str, Any],
    runtime: Sequence[str],
    egress_allowlist: Sequence[str],
    workload: Workload,
    subnet: ipaddress.IPv4Network,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    runc: str = "runc",
    services: Services | None = None,
) -> tuple[PolicyProof, RunResult, RunResult]:
    """Run the workload under the candidate enforce profile (logged, then enforced): the proof.
    `services`: runward's own (the MCP tool gateway), started for each run as under --enforce."""
    if profile.get("defaultAction") in {"SCMP_ACT_ALLOW", "SCMP_ACT_LOG"}:
        raise ValueError("a proof needs the enforce-mode profile (default action refuses); this one allows everything")
    started = _now()
    logged, enforced = (
        run_jailed(workload, each, egress_allowlist, subnet, timeout_s=timeout_s, runc=runc, services=services)
        for each in (_as_logged(profile), profile)
    )
    refused_destinations = sorted({*logged.refused_destinations, *enforced.refused_destinations})
    passed = enforced.exit_code == 0 and not logged.refused_syscalls and not refused_destinations
    problems = []
    if enforced.timed_out:
        problems.append(f"timed out after {timeout_s:g}s under the enforce profile")
    elif enforced.exit_code != 0:
        problems.append(f"exited {enforced.exit_code} under the enforce profile")
    if logged.refused_syscalls:
        problems.append(f"would be refused: {', '.join(logged.refused_syscalls)}")
    if refused_destinations:
        problems.append(f"destinations dropped: {', '.join(refused_destinations)}")
    version = oci.runc_version(runc)
    took = (_now() - started).total_seconds()
    allowed = sum(len(rule.get("names", [])) for rule in profile.get("syscalls", []))
    summary = (
        f"passed under {version} in {took:.1f}s: {allowed} syscalls allowed, {len(egress_allowlist)} destination(s)"
        if passed
        else "failed: " + "; ".join(problems)
    )
    proof = PolicyProof(
        deployment=deployment,
        apd_revision=apd_revision,
        profile_sha256=profile_sha256(profile),
        egress_allowlist=sorted(egress_allowlist),
        passed=passed,
        ran_at=started,
        runtime=version,
        command=workload.describe(),
        exit_code=enforced.exit_code,
        refused_syscalls=logged.refused_syscalls,
        refused_destinations=refused_destinations,
        runtime_syscalls=sorted(runtime),
        summary=summary,
    )
    return proof, logged, enforced


def enforce(
    workload: Workload,
    seccomp: dict[str, Any],
    allowlist: Sequence[str],
    subnet: ipaddress.IPv4Network,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    runc: str = "runc",
    services: Services | None = None,
    deployment: str | None = None,
    refuse_egress: bool = True,
) -> RunResult:
    """`runward run --enforce`: the workload under its bundle; what was refused (or, with
    `refuse_egress=False` in audit, would have been) is in the result."""
    return run_jailed(
        workload,
        seccomp,
        allowlist,
        subnet,
        timeout_s=timeout_s,
        runc=runc,
        services=services,
        deployment=deployment,
        refuse_egress=refuse_egress,
    )


def _remove_agent_cgroups(cgroups_path: str, root: Path = Path("/sys/fs/cgroup")) -> None:
    """runc removes the container's own cgroup, not the agent's directory it made above it (in
    every hierarchy: unified and, on hybrid hosts, each v1 controller). Remove that directory where
    it is empty; one in use by another run of the agent is not empty and stays."""
    agent_dir = Path(cgroups_path).parent.relative_to("/")
    for hierarchy in root.iterdir() if root.is_dir() else ():
        for leftover in (hierarchy / agent_dir / Path(cgroups_path).name, hierarchy / agent_dir):
            with contextlib.suppress(OSError):
                leftover.rmdir()


def pod_cgroup(deployment: str) -> str:
    """A cgroupsPath in the layout `runward run` gives an agent's replicas
    (`/runward/<namespace>_<name>/<pod>`): the kernel log collector (sensor.seccomplog) attributes
    the container's seccomp records to the agent by it, as it does a replica's."""
    namespace, _, name = deployment.partition("/")
    return f"/runward/{namespace}_{name}/{name}-runc-{secrets.token_hex(4)}"


def runc_available(runc: str = "runc") -> str | None:
    """Why runc cannot be used here, or None."""
    if shutil.which(runc) is None:
        return f"{runc} is not installed"
    return None
