"""Local mode: the workload registry, the Local resolver and run_workload's cgroups."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sensor.attribution.cgroupfs import cgroup2_root
from sensor.attribution.local import ENDED_RETENTION_S, LocalResolver, Registry, WorkloadEntry
from sensor.workloads import WorkloadError, run_workload, template_hash


def entry(cg: int, pod: str = "researcher-bcdfghjklm-xz245", **kw: object) -> WorkloadEntry:
    base: dict[str, object] = dict(
        cgroup_id=cg,
        cgroup_path=f"/sys/fs/cgroup/unified/runward/agents_researcher/{pod}",
        namespace="agents",
        deployment="agents/researcher",
        pod=pod,
        pod_uid=f"uid-{cg}",
        service_account="researcher",
        started_at=100.0,
    )
    base.update(kw)
    return WorkloadEntry(**base)  # type: ignore[arg-type]


def test_registry_round_trip_and_resolver(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "workloads.json")
    reg.add(entry(11))
    reg.add(entry(12, pod="researcher-bcdfghjklm-qq777"))
    resolver = LocalResolver(Registry(tmp_path / "workloads.json"), Path("/sys/fs/cgroup/unified"))
    identity = resolver.resolve(12)
    assert identity is not None
    assert (identity.deployment, identity.service_account, identity.pod, identity.namespace) == (
        "agents/researcher",
        "researcher",
        "researcher-bcdfghjklm-qq777",
        "agents",
    )
    assert resolver.resolve(13) is None
    assert resolver.watch_paths() == [Path("/sys/fs/cgroup/unified/runward")]


def test_reader_sees_entries_added_after_its_first_read(tmp_path: Path) -> None:
    reader = Registry(tmp_path / "workloads.json")
    assert reader.entries() == {}
    Registry(tmp_path / "workloads.json").add(entry(21))
    assert set(reader.entries()) == {21}


def test_ended_entries_are_kept_for_a_while_then_pruned(tmp_path: Path) -> None:
    now = [1000.0]
    reg = Registry(tmp_path / "workloads.json", clock=lambda: now[0])
    reg.add(entry(31))
    reg.mark_ended(31)
    assert reg.entries()[31].ended_at == 1000.0
    now[0] += ENDED_RETENTION_S + 1
    reg.add(entry(32))
    assert set(Registry(tmp_path / "workloads.json").entries()) == {32}


def test_corrupt_registry_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "workloads.json").write_text("{nope")
    with pytest.raises(ValueError, match="remove it"):
        Registry(tmp_path / "workloads.json").entries()


def test_pod_template_hash_is_stable_per_template() -> None:
    a = template_hash("agents/researcher", "researcher", ["python", "a.py"])
    assert a == template_hash("agents/researcher", "researcher", ["python", "a.py"])
    assert a != template_hash("agents/researcher", "researcher", ["python", "b.py"])
    assert len(a) == 10


@pytest.mark.parametrize(
    ("deployment", "sa"), [("noslash", "sa"), ("Agents/x", "sa"), ("a/b", "Bad_SA"), ("a/" + "x" * 70, "sa")]
)
def test_invalid_identities_are_refused_before_anything_starts(deployment: str, sa: str, tmp_path: Path) -> None:
    with pytest.raises((WorkloadError, ValueError)):
        run_workload(deployment, sa, 1, ["true"], home=tmp_path)
    assert not (tmp_path / "workloads.json").exists()


needs_cgroups = pytest.mark.skipif(
    os.geteuid() != 0 or cgroup2_root() is None, reason="run_workload needs root and a cgroup v2 mount"
)


@needs_cgroups
def test_each_replica_runs_in_its_own_registered_cgroup_and_is_cleaned_up(tmp_path: Path) -> None:
    script = (
        "import time, sys; print([l for l in open('/proc/self/cgroup') if l.startswith('0::')][0].strip());"
        "sys.stdout.flush(); time.sleep(30)"
    )
    workload = run_workload(
        "agents-local/researcher",
        "researcher",
        2,
        [sys.executable, "-c", script],
        home=tmp_path,
        stdout=subprocess.PIPE,
    )
    try:
        assert len(workload.replicas) == 2
        pods = {r.pod for r in workload.replicas}
        assert len(pods) == 2 and all(p.startswith("researcher-") for p in pods)
        registry = Registry(tmp_path / "workloads.json").entries()
        for replica in workload.replicas:
            assert replica.cgroup.parent.name == "agents-local_researcher"
            assert replica.cgroup_id == os.stat(replica.cgroup).st_ino
            line = replica.process.stdout.readline().decode() if replica.process.stdout else ""
            assert line.strip() == "0::/runward/agents-local_researcher/" + replica.pod
            assert str(replica.process.pid) in (replica.cgroup / "cgroup.procs").read_text().split()
            reg = registry[replica.cgroup_id]
            assert (reg.deployment, reg.service_account, reg.pod, reg.pid) == (
                "agents-local/researcher",
                "researcher",
                replica.pod,
                replica.process.pid,
            )
    finally:
        started = time.monotonic()
        workload.close()
        for replica in workload.replicas:
            if replica.process.stdout:
                replica.process.stdout.close()
    assert time.monotonic() - started < 5
    assert all(not r.cgroup.exists() for r in workload.replicas)
    assert not workload.replicas[0].cgroup.parent.exists()
    ended = Registry(tmp_path / "workloads.json").entries()
    assert all(ended[r.cgroup_id].ended_at is not None for r in workload.replicas)


@needs_cgroups
def test_leftover_grandchildren_are_killed_with_the_cgroup(tmp_path: Path) -> None:
    # The replica exits at once but leaves a daemonised sleeper behind in its cgroup.
    workload = run_workload(
        "agents-local/leaky",
        "leaky",
        1,
        ["/bin/sh", "-c", "sleep 60 & exit 0"],
        home=tmp_path,
    )
    assert workload.wait(timeout=10) == [0]
    cgroup = workload.replicas[0].cgroup
    assert (cgroup / "cgroup.procs").read_text().strip()  # the sleeper is still there
    workload.close()
    assert not cgroup.exists()


@needs_cgroups
def test_a_command_that_cannot_start_leaves_no_cgroup_behind(tmp_path: Path) -> None:
    root = cgroup2_root()
    assert root is not None
    with pytest.raises(FileNotFoundError):
        run_workload("agents-local/missing", "missing", 1, ["/nonexistent/binary"], home=tmp_path)
    assert not (root / "runward" / "agents-local_missing").exists()
