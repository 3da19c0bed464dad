"""OCI bundles for a workload: a read-only rootfs holding only what the workload may run.

The rootfs is an empty directory: the host's libraries (/usr/lib, /usr/lib64, /usr/local/lib,
/usr/share) and /etc are bind-mounted read-only, and so is each binary the workload may execute
(its command and the APD's exec behaviours), at the path it was run by. Any other binary simply
is not there: a new binary is refused by absence, not by a rule that could be forgotten. The
runtime syscall measurement uses a rootfs holding only busybox-static.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BUSYBOX = Path("/bin/busybox")
LIBRARY_DIRS = ("/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/share", "/etc")
# Debian's merged /usr: these are symlinks on the host, and so in the rootfs.
MERGED = {"/bin": "usr/bin", "/sbin": "usr/sbin", "/lib": "usr/lib", "/lib64": "usr/lib64"}
DEFAULT_ENV = ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/tmp", "LANG=C.UTF-8"]


class BundleError(ValueError):
    """The workload cannot be put in a bundle (a binary that is not on this host, ...)."""


def runc_version(runc: str = "runc") -> str:
    """`runc 1.1.5+ds1` (what the proof names as its runtime)."""
    try:
        out = subprocess.run([runc, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BundleError(f"runc is not usable ({exc}); install it (apt-get install runc)") from None
    first = out.splitlines()[0] if out else "runc unknown"
    return first.replace(" version", "")


def resolve_binary(name: str) -> str:
    """The absolute path a command name runs (PATH lookup as the workload's shell would)."""
    if "/" in name:
        return os.path.abspath(name)
    found = shutil.which(name, path=DEFAULT_ENV[0].removeprefix("PATH="))
    if found is None:
        raise BundleError(f"{name!r} is not on this host's PATH; give the workload's command with an absolute path")
    return found


def _in_rootfs(path: str) -> str:
    """Where a host path lives in the rootfs, through the merged-/usr symlinks."""
    for link, target in MERGED.items():
        if path == link or path.startswith(link + "/"):
            return "/" + target + path[len(link) :]
    return path


def binary_mounts(binaries: Iterable[str]) -> list[dict[str, Any]]:
    """Read-only bind mounts of each binary at its path and at the path its symlinks lead to."""
    mounts: dict[str, dict[str, Any]] = {}
    for binary in binaries:
        real = os.path.realpath(binary)
        if not os.path.isfile(real):
            continue  # an APD exec that is not on this host cannot be run here anyway
        for destination in {_in_rootfs(binary), _in_rootfs(real)}:
            if any(destination.startswith(d + "/") for d in LIBRARY_DIRS):
                continue  # already visible through a library mount
            mounts[destination] = _bind(real, destination)
    return [mounts[d] for d in sorted(mounts)]


def _bind(source: str, destination: str) -> dict[str, Any]:
    return {"destination": destination, "type": "bind", "source": source, "options": ["bind", "ro", "nosuid"]}


def make_rootfs(bundle: Path, busybox_only: bool = False) -> Path:
    rootfs = bundle / "rootfs"
    for sub in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "tmp", "proc", "dev", "sys", "etc"):
        (rootfs / sub).mkdir(parents=True, exist_ok=True)
    for link, target in MERGED.items():
        path = rootfs / link.lstrip("/")
        if not path.is_symlink():
            path.symlink_to(target)
    if busybox_only:
        shutil.copy2(BUSYBOX.resolve(), rootfs / "usr/bin/busybox")
    return rootfs


def config(
    args: Sequence[str],
    seccomp: dict[str, Any] | None,
    *,
    netns: str | None = None,
    mounts: Sequence[dict[str, Any]] = (),
    env: Sequence[str] = (),
    cwd: str = "/tmp",
    hostname: str = "runward",
) -> dict[str, Any]:
    """An OCI runtime config (the shape `runc spec` writes) for one workload."""
    namespaces: list[dict[str, str]] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    namespaces.append({"type": "network", "path": f"/var/run/netns/{netns}"} if netns else {"type": "network"})
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    linux: dict[str, Any] = {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": namespaces,
        "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    }
    if seccomp is not None:
        linux["seccomp"] = seccomp
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": [*DEFAULT_ENV, *env],
            "cwd": cwd,
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            *([] if not mounts else list(mounts)),
        ],
        "linux": linux,
    }


def library_mounts() -> list[dict[str, Any]]:
    return [_bind(d, d) | {"options": ["rbind", "ro", "nosuid"]} for d in LIBRARY_DIRS if os.path.isdir(d)]


def write_bundle(
    bundle: Path,
    args: Sequence[str],
    seccomp: dict[str, Any] | None,
    *,
    binaries: Iterable[str] = (),
    netns: str | None = None,
    env: Sequence[str] = (),
    cwd: str | None = None,
) -> Path:
    """A bundle directory for a host workload: rootfs + config.json. Returns the bundle path.

    `cwd`, the directory the workload was recorded in, is bind-mounted read-only at its own
    path and is the workload's working directory (its scripts and data live there).
    """
    if not args:
        raise BundleError("the workload has no command to run")
    command = resolve_binary(args[0])
    make_rootfs(bundle)
    mounts = [*library_mounts(), *binary_mounts([command, *binaries])]
    if cwd is not None and cwd not in ("/", "/tmp"):
        if not os.path.isdir(cwd):
            raise BundleError(f"the workload's directory {cwd} does not exist on this host")
        mounts.append(_bind(cwd, cwd) | {"options": ["rbind", "ro", "nosuid"]})
    cfg = config([command, *args[1:]], seccomp, netns=netns, mounts=mounts, env=env, cwd=cwd or "/tmp")
    (bundle / "config.json").write_text(json.dumps(cfg, indent=2))
    return bundle


def with_seccomp(bundle: Path, seccomp: dict[str, Any] | None, netns: str | None = None) -> None:
    """Put a seccomp profile (and network namespace) into an existing bundle's config.json."""
    path = bundle / "config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path} is not an OCI bundle config ({exc})") from None
    linux = cfg.setdefault("linux", {})
    if seccomp is None:
        linux.pop("seccomp", None)
    else:
        linux["seccomp"] = seccomp
    if netns is not None:
        spaces = [n for n in linux.get("namespaces", []) if n.get("type") != "network"]
        linux["namespaces"] = [*spaces, {"type": "network", "path": f"/var/run/netns/{netns}"}]
    path.write_text(json.dumps(cfg, indent=2))
