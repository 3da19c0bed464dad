"""Enforce on one machine, on the real runtime and kernel: runc, seccomp, a network namespace,
nftables. The agent is a small Python program talking to an HTTP server on the host.

Its APD's syscalls come from a seccomp-log observation of the same program under runc (the
sensor's eBPF syscall set is the production source; the sensor pipeline is tested elsewhere):
only the records of the program itself count, not runc's, as the sensor would see it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from edges.runc.audit import audit_available
from edges.runc.netns import subnet_for
from edges.runc.prove import Workload, prove, run_jailed, runtime_syscalls
from runward.control.api.app import create_app
from runward.control.api.publisher import KafkaPublisher
from runward.control.broker import free_port
from runward.control.cli import main
from runward.control.lifecycle import PYTHON, LocalAgent
from runward.core import signing
from runward.core.config import Settings
from runward.core.contracts import ApdRevision, EnforcementMode, PolicyProof, WindowStatus, utcnow
from runward.core.store import Store, history, upgrade
from runward.core.topics import PROOFS
from services.enforcer.policies import seccomp_profile
from tests.kafka_reading import read_messages
from tests.runc.enforced import enforce_bundle

pytestmark = pytest.mark.skipif(
    shutil.which("runc") is None or audit_available() is not None or shutil.which("nft") is None,
    reason=f"needs root, runc, nft and libseccomp ({audit_available() or 'runc or nft missing'})",
)

D = "agents/prover"
APPROVER = "approve-5a7c19e2b04d6f38"
VIEWER = "view-0f3e8d2c6b1a9574"
KEY = "promotion-key-of-the-runc-tests-0123456789abcdef"


class Agent(LocalAgent):
    """The demo's small agent (runward.control.lifecycle), proven and enforced here piece by piece."""

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        self.home = home

    def workload(self, what: str = "normal") -> Workload:
        return Workload(command=self.argv(what), binaries=[PYTHON], cwd=str(self.dir))

    def observed_apd(self) -> ApdRevision:
        """Observe the normal workload (seccomp log of everything) and learn what the program did."""
        everything = {"defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": []}
        seen = run_jailed(self.workload(), everything, [self.destination], subnet_for(D))
        assert seen.exit_code == 0, seen.stderr
        own = sorted(name for name, comms in seen.refused_by.items() if any(not c.startswith("runc:") for c in comms))
        now = utcnow()
        return ApdRevision(
            deployment=D,
            revision=1,
            created_at=now,
            autonomy="low",
            window_started_at=now - timedelta(days=3),
            window_ends_at=now - timedelta(minutes=1),
            window_status=WindowStatus.COMPLETE,
            behaviours={
                "syscalls": [f"syscall:{n}" for n in own],
                "egress": [f"egress:{self.destination}"],
                "exec": [f"exec:{PYTHON}"],
            },
        )


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Agent, ApdRevision]]:
    home = tmp_path_factory.mktemp("runc-home")
    observed = Agent(home)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RUNWARD_HOME", str(home))
        yield observed, observed.observed_apd()
    observed.close()


@pytest.fixture
def api_url(agent: tuple[Agent, ApdRevision], kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[str, Store]]:
    db = f"sqlite:///{tmp_path}/runward.db"
    upgrade(db)
    store = Store(db)
    _, apd = agent
    store.touch_agent(D, "prover-sa", utcnow())
    store.put_artifact(D, "apd", apd.revision, apd.created_at, apd.model_dump(mode="json"))
    settings = Settings(
        api_tokens=f"bob:{APPROVER}:approver,vic:{VIEWER}:viewer", kafka=kafka_bootstrap, promotion_key=KEY
    )
    app = create_app(settings, store=store, publisher=KafkaPublisher(kafka_bootstrap, timeout_s=15))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url, store
    server.should_exit = True
    thread.join(timeout=10)


def test_runtime_syscalls_are_measured_from_runc_and_needed(agent: tuple[Agent, ApdRevision]) -> None:
    observed, apd = agent
    runtime = runtime_syscalls(observed.home)
    # runc's container init checks /proc/self/fd is on procfs and closes inherited fds before exec.
    assert {"execve", "fstatfs", "getdents64"} <= set(runtime)
    cached = list((observed.home / "runc").glob("runtime-syscalls-runc-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["syscalls"] == runtime
    # A profile of the agent's own syscalls alone stops the runtime before the agent starts.
    bare = seccomp_profile(apd, EnforcementMode.ENFORCE)
    proof, _, enforced = prove(
        deployment=D,
        apd_revision=1,
        profile=bare,
        runtime=[],
        egress_allowlist=[observed.destination],
        workload=observed.workload(),
        subnet=subnet_for(D),
    )
    assert not proof.passed and enforced.exit_code != 0
    assert set(proof.refused_syscalls) & (set(runtime) - {n.split(":", 1)[1] for n in apd.behaviours["syscalls"]})


def test_prove_passes_for_the_observed_workload_and_is_signed_by_the_api(
    agent: tuple[Agent, ApdRevision],
    api_url: tuple[str, Store],
    kafka_bootstrap: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    observed, apd = agent
    url, store = api_url
    os.chdir(observed.dir)
    # `runward run` observes the agent and records its command line for `runward prove`.
    assert main(["run", "--deployment", D, "--service-account", "prover-sa", "--", *observed.argv()]) == 0
    recorded = json.loads((observed.home / "workloads" / "agents" / "prover.json").read_text())
    assert recorded["command"] == observed.argv() and recorded["cwd"] == str(observed.dir)
    capsys.readouterr()

    assert main(["prove", D, "--api", url, "--token", VIEWER]) == 2  # a viewer may not record a proof
    assert "403" in capsys.readouterr().err
    code = main(["prove", D, "--api", url, "--token", APPROVER])
    assert code == 0, capsys.readouterr()
    shown = capsys.readouterr().out
    print(shown, file=sys.__stdout__)  # the proof table, for the record
    assert "PASS" in shown and "refused syscalls" in shown and "fstatfs" in shown
    (message,) = read_messages(kafka_bootstrap, PROOFS.name, 1, lambda m: m.key == D and m.record.passed, timeout=30)
    proof = message.record
    assert isinstance(proof, PolicyProof)
    assert proof.prover == "bob" and signing.signature_problem(proof, KEY.encode()) is None
    assert proof.exit_code == 0 and proof.refused_syscalls == [] and proof.refused_destinations == []
    assert proof.command == observed.argv()
    assert signing.profile_sha256(seccomp_profile(apd, EnforcementMode.ENFORCE, proof.runtime_syscalls)) == (
        proof.profile_sha256
    )
    assert [e["kind"] for e in history.entries(store, D)] == ["proof"]


@pytest.mark.parametrize(
    ("what", "refused_syscall", "refused_destination"),
    [("unshare", "unshare", False), ("listen", "listen", False), ("newdest", None, True)],
)
def test_prove_fails_naming_what_the_workload_does_new(
    agent: tuple[Agent, ApdRevision],
    api_url: tuple[str, Store],
    capsys: pytest.CaptureFixture[str],
    what: str,
    refused_syscall: str | None,
    refused_destination: bool,
) -> None:
    observed, _ = agent
    url, store = api_url
    os.chdir(observed.dir)
    command = " ".join(observed.argv(what))
    assert main(["prove", D, "--command", command, "--api", url, "--token", APPROVER]) == 1
    shown = capsys.readouterr().out
    assert "FAIL" in shown
    stored = store.latest_artifact(D, "proof")
    assert stored is not None and stored["passed"] is False
    if refused_syscall:
        assert refused_syscall in stored["refused_syscalls"] and refused_syscall in shown
    if refused_destination:
        assert stored["refused_destinations"] == [f"{observed.host}:{observed.other}/tcp"]


def test_run_enforce_keeps_the_workload_whole_and_blocks_what_is_new(
    agent: tuple[Agent, ApdRevision], capfd: pytest.CaptureFixture[str]
) -> None:
    observed, apd = agent
    runtime = runtime_syscalls(observed.home)
    profile = seccomp_profile(apd, EnforcementMode.ENFORCE, runtime)
    proof, _, _ = prove(
        deployment=D,
        apd_revision=1,
        profile=profile,
        runtime=runtime,
        egress_allowlist=[observed.destination],
        workload=observed.workload(),
        subnet=subnet_for(D),
    )
    assert proof.passed, proof.summary
    bundle_file = observed.home / "bundle.json"
    bundle_file.write_text(json.dumps(enforce_bundle(apd, proof).model_dump(mode="json")))
    os.chdir(observed.dir)
    base = ["run", "--deployment", D, "--service-account", "prover-sa", "--enforce", "--bundle-file", str(bundle_file)]

    assert main([*base, "--", *observed.argv()]) == 0
    out, err = capfd.readouterr()
    assert "200" in out and "DONE normal" in out and "egress refused" not in err

    for what in ("unshare", "listen", "exec", "newdest"):
        code = main([*base, "--", *observed.argv(what)])
        out, err = capfd.readouterr()
        assert code == 3, (what, out, err)
        assert f"BLOCKED {what}" in out and "200" in out  # the normal part still ran
        if what == "newdest":
            assert f"egress refused: {observed.host}:{observed.other}/tcp" in err
    # runc removes the container's cgroup; the agent's directory above it is removed after each run.
    assert not list(Path("/sys/fs/cgroup").glob("*/runward/agents_prover")), "cgroups left behind"


def busybox_bundle(where: Path, script: str) -> Path:
    """An OCI bundle made elsewhere (here: busybox-static), as `runward prove --bundle DIR` takes it."""
    from edges.runc import oci

    oci.make_rootfs(where, busybox_only=True)
    cfg = oci.config(["/usr/bin/busybox", "sh", "-c", script], None)
    cfg["process"]["terminal"] = True  # what `runc spec` writes; the prover runs it without a terminal
    (where / "config.json").write_text(json.dumps(cfg))
    return where


def test_an_oci_bundle_is_proven_as_it_is(agent: tuple[Agent, ApdRevision], tmp_path: Path) -> None:
    observed, _ = agent
    runtime = runtime_syscalls(observed.home)
    normal = Workload(bundle=busybox_bundle(tmp_path / "normal", "echo plan > /tmp/notes; cat /tmp/notes"))
    everything = {"defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": []}
    seen = run_jailed(normal, everything, [], subnet_for(D))
    assert seen.exit_code == 0 and "plan" in seen.stdout, seen.stderr
    own = sorted(n for n, comms in seen.refused_by.items() if any(not c.startswith("runc:") for c in comms))
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": sorted({*own, *runtime}), "action": "SCMP_ACT_ALLOW"}],
    }

    def proof_of(workload: Workload) -> PolicyProof:
        found, _, _ = prove(
            deployment=D,
            apd_revision=1,
            profile=profile,
            runtime=runtime,
            egress_allowlist=[],
            workload=workload,
            subnet=subnet_for(D),
        )
        return found

    proof = proof_of(normal)
    assert proof.passed and proof.command == [f"bundle:{tmp_path / 'normal'}"], proof.summary
    # The bundle's own config is untouched: the prover ran a copy with the profile and the jail.
    assert "seccomp" not in json.loads((tmp_path / "normal" / "config.json").read_text())["linux"]
    new = Workload(bundle=busybox_bundle(tmp_path / "new", "echo plan > /tmp/notes; unshare -u true"))
    failed = proof_of(new)
    assert not failed.passed and "unshare" in failed.refused_syscalls


def test_run_enforce_takes_the_latest_bundle_from_the_api(
    agent: tuple[Agent, ApdRevision], api_url: tuple[str, Store], capfd: pytest.CaptureFixture[str]
) -> None:
    observed, apd = agent
    url, store = api_url
    runtime = runtime_syscalls(observed.home)
    unproven = PolicyProof(
        deployment=D,
        apd_revision=1,
        profile_sha256="",
        passed=True,
        ran_at=utcnow(),
        runtime="runc",
        runtime_syscalls=runtime,
    )
    digest = signing.profile_sha256(seccomp_profile(apd, EnforcementMode.ENFORCE, runtime))
    bundle = enforce_bundle(apd, unproven.model_copy(update={"profile_sha256": digest})).model_dump(mode="json")
    store.put_artifact(D, "policy", int(str(bundle["revision"])), utcnow(), bundle)
    os.chdir(observed.dir)
    base = ["run", "--deployment", D, "--service-account", "prover-sa", "--enforce", "--api", url, "--token", VIEWER]
    assert main([*base, "--", *observed.argv()]) == 0
    out, err = capfd.readouterr()
    assert "DONE normal" in out and f"under policy bundle r{bundle['revision']} (enforce, APD revision 1)" in err
    assert main([*base, "--", *observed.argv("exec")]) == 3
    assert "BLOCKED exec" in capfd.readouterr().out


def test_an_audit_jail_lets_a_new_destination_through_and_logs_it_for_the_agent(
    agent: tuple[Agent, ApdRevision],
) -> None:
    from sensor.seccomplog.parse import egress_drop

    observed, _ = agent
    everything = {"defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": []}
    new = f"{observed.host}:{observed.other}/tcp"
    audited = run_jailed(
        observed.workload("newdest"),
        everything,
        [observed.destination],
        subnet_for(D),
        deployment=D,
        refuse_egress=False,
    )
    # Audit breaks nothing: the connection was made, and it is named as what enforce would refuse.
    assert audited.exit_code == 0 and "DONE newdest" in audited.stdout, audited.stderr
    assert audited.refused_destinations == [new]
    logged = [
        drop
        for line in subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout.splitlines()
        if "runward-egress:" in line
        and (drop := egress_drop(line[line.index("runward-egress:") :])) is not None
        and drop.deployment == D
    ]
    assert any(drop.destination == new for drop in logged), logged

    # The same jail refusing (enforce): the connection is never made.
    enforced = run_jailed(observed.workload("newdest"), everything, [observed.destination], subnet_for(D), deployment=D)
    assert enforced.exit_code == 3 and "BLOCKED newdest" in enforced.stdout
    assert enforced.refused_destinations == [new]
