"""Build the CO-RE BPF object from source against the running kernel's BTF.

`python -m sensor.build` builds eagerly; the loader calls `ensure_built()` so a fresh
clone works without a separate step. The object is rebuilt when its sources, the compiler
flags or the kernel BTF change (content hashes, not mtimes: checkouts reset mtimes).

An image builds the objects once (`python -m sensor.build --prebuild DIR`) and the loader uses
them when `RUNWARD_SENSOR_PREBUILT=DIR`: CO-RE relocates them against the node's BTF at load,
so the image needs no compiler. The one kernel-dependent choice, whether the
`cap_capable` BTF tracepoint exists (Linux 6.14+), is made at load between two variants.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SENSOR_DIR = Path(__file__).resolve().parent
BPF_DIR = SENSOR_DIR / "bpf"
MAIN_SOURCE = BPF_DIR / "runward.bpf.c"
OBJECT_NAME = "runward.bpf.o"
CAP_OBJECT_NAME = "runward-cap.bpf.o"  # the prebuilt variant with the cap_capable tracepoint
BTF_PATH = Path("/sys/kernel/btf/vmlinux")
_TOOL_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Features:
    """Kernel features probed from BTF, turned into -D flags."""

    cap_tracepoint: bool
    sock_tracepoints: bool = True  # sock:sock_recv_length / sock_send_length, Linux 6.3+
    rdonly_cast: bool = True  # the bpf_rdonly_cast kfunc, Linux 6.2+

    def defines(self) -> list[str]:
        wanted = {
            "RW_HAVE_CAP_TRACEPOINT": self.cap_tracepoint,
            "RW_HAVE_SOCK_TRACEPOINTS": self.sock_tracepoints,
            "RW_HAVE_RDONLY_CAST": self.rdonly_cast,
        }
        return [f"-D{name}" for name, present in wanted.items() if present]


def build_dir() -> Path:
    override = os.environ.get("RUNWARD_SENSOR_BUILD_DIR")
    return Path(override) if override else SENSOR_DIR / "build"


def find_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for directory in _TOOL_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise BuildError(f"{name} not found: apt-get install clang llvm libbpf-dev bpftool")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sources_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(BPF_DIR.glob("*")):
        if path.suffix in {".c", ".h"}:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def probe_features(vmlinux_h: Path, btf: Path = BTF_PATH) -> Features:
    text = vmlinux_h.read_text(errors="replace")
    try:
        # kfuncs are not in the C dump; their names are in the raw BTF's string section.
        rdonly_cast = b"\0bpf_rdonly_cast\0" in btf.read_bytes()
    except OSError:
        rdonly_cast = False
    return Features(
        cap_tracepoint="btf_trace_cap_capable)" in text,
        sock_tracepoints="btf_trace_sock_recv_length)" in text and "btf_trace_sock_send_length)" in text,
        rdonly_cast=rdonly_cast,
    )


def _dump_vmlinux_h(out: Path, btf: Path) -> None:
    bpftool = find_tool("bpftool")
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as handle:
        result = subprocess.run(
            [bpftool, "btf", "dump", "file", str(btf), "format", "c"],
            stdout=handle,
            stderr=subprocess.PIPE,
            check=False,
        )
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"bpftool btf dump failed: {result.stderr.decode(errors='replace').strip()}")
    tmp.replace(out)


def _compile(out: Path, include: Path, features: Features) -> None:
    clang = find_tool("clang")
    tmp = out.with_suffix(".tmp.o")
    cmd = [
        clang,
        "-g",
        "-O2",
        "-target",
        "bpf",
        "-D__TARGET_ARCH_x86",
        *features.defines(),
        "-I",
        str(include),
        "-I",
        str(BPF_DIR),
        "-c",
        str(MAIN_SOURCE),
        "-o",
        str(tmp),
    ]
    result = subprocess.run(cmd, capture_output=True, check=False)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        log = result.stderr.decode(errors="replace")
        raise BuildError(f"clang failed building {MAIN_SOURCE.name}:\n{log[-4000:]}")
    tmp.replace(out)


def build_variant(features: Features, out: Path) -> Path:
    """Build the object for another kernel's features into out (the kernel tests load the
    pre-6.3 variant on a recent kernel, which has every hook that variant uses)."""
    include = ensure_built().parent
    _compile(out, include, features)
    return out


def _stamp(btf: Path) -> dict[str, str]:
    return {"btf": _sha256(btf.read_bytes()), "sources": _sources_digest(), "arch": "x86"}


def prebuilt_dir() -> Path | None:
    override = os.environ.get("RUNWARD_SENSOR_PREBUILT")
    return Path(override) if override else None


def kernel_has_cap_tracepoint(btf: Path = BTF_PATH) -> bool:
    # The tracepoint's BTF typedef name is in the kernel BTF's string section: no bpftool needed.
    return b"btf_trace_cap_capable\x00" in btf.read_bytes()


def prebuilt_object(directory: Path, btf: Path = BTF_PATH) -> Path:
    """The prebuilt variant this kernel can attach."""
    obj = directory / (CAP_OBJECT_NAME if kernel_has_cap_tracepoint(btf) else OBJECT_NAME)
    if not obj.is_file():
        raise BuildError(f"RUNWARD_SENSOR_PREBUILT={directory} has no {obj.name}: rebuild the image")
    return obj


def prebuild(directory: Path, btf: Path = BTF_PATH) -> list[Path]:
    """Both variants, against this machine's BTF for vmlinux.h (types only: CO-RE relocates)."""
    directory.mkdir(parents=True, exist_ok=True)
    vmlinux_h = directory / "vmlinux.h"
    _dump_vmlinux_h(vmlinux_h, btf)
    built = []
    for name, features in ((OBJECT_NAME, Features(False)), (CAP_OBJECT_NAME, Features(True))):
        _compile(directory / name, directory, features)
        built.append(directory / name)
    vmlinux_h.unlink()
    return built


def is_current(btf: Path = BTF_PATH) -> bool:
    """Whether the built object matches the sources and this kernel's BTF."""
    prebuilt = prebuilt_dir()
    if prebuilt is not None:
        return (prebuilt / OBJECT_NAME).is_file() and (prebuilt / CAP_OBJECT_NAME).is_file()
    out_dir = build_dir()
    try:
        stamp = json.loads((out_dir / "stamp.json").read_text())
        return (out_dir / OBJECT_NAME).exists() and stamp == _stamp(btf)
    except (OSError, ValueError):
        return False


def ensure_built(force: bool = False, btf: Path = BTF_PATH) -> Path:
    """Return the path of an up-to-date object, building it if needed."""
    if os.uname().machine != "x86_64":
        raise BuildError(f"the sensor's syscall wiring is x86_64 only, this machine is {os.uname().machine}")
    if not btf.exists():
        raise BuildError(f"{btf} is missing: the kernel needs CONFIG_DEBUG_INFO_BTF=y for CO-RE")
    prebuilt = prebuilt_dir()
    if prebuilt is not None:
        return prebuilt_object(prebuilt, btf)
    out_dir = build_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    obj = out_dir / OBJECT_NAME
    stamp_path = out_dir / "stamp.json"
    vmlinux_h = out_dir / "vmlinux.h"
    # Two processes (a test and a CLI) may build at once; the lock makes the second wait.
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = _stamp(btf)
        btf_digest = stamp["btf"]
        if not force and obj.exists() and stamp_path.exists():
            try:
                if json.loads(stamp_path.read_text()) == stamp:
                    return obj
            except ValueError:
                pass
        old_btf = None
        if stamp_path.exists():
            try:
                old_btf = json.loads(stamp_path.read_text()).get("btf")
            except ValueError:
                old_btf = None
        if force or not vmlinux_h.exists() or old_btf != btf_digest:
            _dump_vmlinux_h(vmlinux_h, btf)
        _compile(obj, out_dir, probe_features(vmlinux_h, btf))
        stamp_path.write_text(json.dumps(stamp))
    return obj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sensor.build", description=__doc__)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument(
        "--prebuild", type=Path, metavar="DIR", help="build both kernel variants into DIR (for an image)"
    )
    args = parser.parse_args(argv)
    try:
        objects = prebuild(args.prebuild) if args.prebuild else [ensure_built(force=args.force)]
    except BuildError as exc:
        print(f"sensor build failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(map(str, objects)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
