"""Reading the kernel log's records of would-be violations (pure: text in, typed records out).

Two kinds of line are read from /dev/kmsg:

* seccomp, kernel audit type 1326 (AUDIT_SECCOMP), printed by the kernel when no audit daemon
  listens on the audit netlink socket and the action is in /proc/sys/kernel/seccomp/actions_logged:

      audit: type=1326 audit(1796056335.174:132): auid=4294967295 uid=0 gid=0 ses=4294967295
      pid=15004 comm="python3" exe="/usr/bin/python3.11" sig=0 arch=c000003e syscall=165
      compat=0 ip=0x40828e code=0x7ffc0000

  `code` is the seccomp action (0x7ffc0000 SCMP_ACT_LOG: allowed and logged, i.e. audit mode;
  0x00050000 SCMP_ACT_ERRNO, 0x80000000 KILL_PROCESS, ...: actually refused).

* nftables egress drops of the local network allowlist, logged with the prefix
  `runward-egress:<namespace>/<name>: ` (the agent's Deployment id, then a space), which the
  kernel prints before the packet fields:

      runward-egress:agents/reporter: IN=veth-h OUT=eth0 SRC=10.200.0.2 DST=203.0.113.7 LEN=60
      ... PROTO=TCP SPT=40112 DPT=443 ...

  (`nft ... log prefix "runward-egress:agents/reporter: " drop` in enforce mode, `log` without the
  `drop` in audit). The Deployment in the prefix is the attribution. The kernel prints `log`
  lines of a rule in a network namespace other than the host's only when
  `net.netfilter.nf_log_all_netns=1`; without it, put the logging rule on the host side of the
  pod's veth (e.g. a forward chain matching `iifname <host veth>`), where it is printed.

Everything here takes hostile text (the kernel log holds what agents make the kernel print, and
root can write anything to /dev/kmsg): every function returns a record or None, never raises, and
never names a Deployment that is not a DNS-1123 `<namespace>/<name>`
(tests/seccomplog/test_parse_properties.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runward.core.syscall_table import X86_64_SYSCALLS

AUDIT_SECCOMP = 1326
ARCH_X86_64 = "c000003e"
EGRESS_PREFIX = "runward-egress:"
SECCOMP_PREFIX = f"audit: type={AUDIT_SECCOMP} "

# Seccomp return actions (include/uapi/linux/seccomp.h), by the top 16 bits of `code`.
ACTIONS = {
    0x8000: "kill_process",
    0x0000: "kill_thread",
    0x0003: "trap",
    0x0005: "errno",
    0x7FC0: "user_notif",
    0x7FF0: "trace",
    0x7FFC: "log",
    0x7FFF: "allow",
}

# The longest record one read() of /dev/kmsg returns (the kernel's CONSOLE_EXT_LOG_MAX: message
# text of at most ~1 KiB, escaped, plus its header and dictionary); the collector reads with a
# buffer of this size. Anything longer is not a kernel record, and is refused before a regular
# expression sees it: the field scan is linear, but a 1 MiB line would still cost the collector
# real time per line, and time spent on garbage is evidence not read.
MAX_RECORD = 8192

# ASCII digits, bounded: `\d` also matches other scripts' digits, and int() of a string of more
# than 4300 digits raises ValueError instead of returning a number.
_KMSG = re.compile(r"^(?P<prio>[0-9]{1,10}),(?P<seq>[0-9]{1,20}),(?P<usec>[0-9]{1,20}),[^;]*;(?P<message>.*)$", re.S)
# `\b` before the key: a field scan started inside a word re-reads the word to its end for every
# letter of it, which is quadratic in the length of a line without `=`.
_FIELD = re.compile(r'\b(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
_AUDIT_ID = re.compile(r"audit\((?P<ts>[0-9.]{1,40}):(?P<serial>[0-9]{1,20})\)")
# The kernel prints the nftables log prefix first in the message: anchored there, so text an agent
# gets into another kernel message (a path, a device name) cannot pose as an egress drop.
_EGRESS = re.compile(r"runward-egress:(?P<namespace>[^/\s]+)/(?P<name>[^:\s]+):\s?(?P<fields>.*)$")
# Kubernetes names: a namespace is a DNS-1123 label, a Deployment name a DNS-1123 subdomain.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PID = re.compile(r"[0-9]{1,10}")


def deployment_of(namespace: str, name: str) -> str | None:
    """`namespace/name` if both are valid Kubernetes names (DNS-1123), else None."""
    if _LABEL.fullmatch(namespace) and len(name) <= 253 and _SUBDOMAIN.fullmatch(name):
        return f"{namespace}/{name}"
    return None


@dataclass(frozen=True)
class KernelRecord:
    """One /dev/kmsg record: its sequence number (unique per boot) and its text; or one record of
    the audit multicast group (`source` "audit"): its audit serial number and its text as printed."""

    seq: int
    usec: int
    message: str
    source: str = "kmsg"


@dataclass(frozen=True)
class SeccompRecord:
    pid: int
    comm: str
    exe: str
    syscall: int
    syscall_name: str
    arch: str
    action: str
    code: str
    audit_id: str


@dataclass(frozen=True)
class EgressDrop:
    deployment: str
    destination: str
    protocol: str
    fields: dict[str, str]


def kmsg_record(raw: bytes | str) -> KernelRecord | None:
    """A /dev/kmsg read (one record per read), or None for a line that is not one."""
    if len(raw) > MAX_RECORD:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    match = _KMSG.match(text.rstrip("\n"))
    if match is None:
        return None
    # Continuation lines (" KEY=value" after a newline) are dictionary properties, not text.
    message = match["message"].split("\n", 1)[0]
    return KernelRecord(int(match["seq"]), int(match["usec"]), message)


def _fields(text: str) -> dict[str, str]:
    return {k: v[1:-1] if v.startswith('"') else v for k, v in _FIELD.findall(text)}


def seccomp_record(message: str) -> SeccompRecord | None:
    """The seccomp audit record in a kernel log message, or None for any other message."""
    # The kernel prints audit records as `audit: type=N ...` (kauditd's printk): anchored there,
    # so another message that merely contains `type=1326 pid=<someone else's>` frames nobody.
    if len(message) > MAX_RECORD or not message.startswith(SECCOMP_PREFIX):
        return None
    fields = _fields(message)
    pid_text, number_text = fields.get("pid", ""), fields.get("syscall", "")
    if not _PID.fullmatch(pid_text) or not _PID.fullmatch(number_text) or int(pid_text) == 0:
        return None  # pid 0 is no process; a signed or non-ASCII number is not the kernel's
    pid, number = int(pid_text), int(number_text)
    arch = fields.get("arch", "")
    code = fields.get("code", "")
    try:
        action = ACTIONS.get(int(code, 16) >> 16, f"action_{code}")
    except ValueError:
        action = f"action_{code}"
    name = X86_64_SYSCALLS.get(number) if arch == ARCH_X86_64 else None
    audit = _AUDIT_ID.search(message)
    return SeccompRecord(
        pid=pid,
        comm=fields.get("comm", ""),
        exe=fields.get("exe", ""),
        syscall=number,
        syscall_name=name or f"syscall_{number}",
        arch=arch,
        action=action,
        code=code,
        audit_id=f"{audit['ts']}:{audit['serial']}" if audit else "",
    )


def egress_drop(message: str) -> EgressDrop | None:
    """The egress allowlist's log line in a kernel log message, or None."""
    if len(message) > MAX_RECORD or not message.startswith(EGRESS_PREFIX):
        return None
    match = _EGRESS.match(message)
    deployment = deployment_of(match["namespace"], match["name"]) if match else None
    if match is None or deployment is None:
        return None
    fields = _fields(match["fields"])
    protocol = fields.get("PROTO", "").lower()
    destination = fields.get("DST", "?")
    if "DPT" in fields:
        destination = f"{destination}:{fields['DPT']}"
    if protocol:
        destination = f"{destination}/{protocol}"
    keep: dict[str, str] = {k: fields[k] for k in ("IN", "OUT", "SRC", "DST", "PROTO", "SPT", "DPT") if k in fields}
    return EgressDrop(deployment, destination, protocol, keep)


def local_workload(cgroup_file: str) -> tuple[str, str] | None:
    """(Deployment id, pod) of a process started by `runward run`, from its /proc/<pid>/cgroup.

    `runward run` puts each replica in the cgroup v2 `/runward/<namespace>_<name>/<pod>`; a
    process in any cgroup below the pod's (a runc container started inside it) is the pod's.
    Namespaces are DNS labels (no '_'), so the first '_' splits namespace and name; a directory
    whose parts are not valid Kubernetes names is no Deployment's.
    """
    for line in cgroup_file.splitlines():
        hierarchy, _, path = line.partition("::")
        if hierarchy != "0":
            continue
        parts = [p for p in path.split("/") if p]
        for i, part in enumerate(parts[:-2]):
            if part == "runward" and "_" in parts[i + 1]:
                namespace, _, name = parts[i + 1].partition("_")
                deployment = deployment_of(namespace, name)
                return (deployment, parts[i + 2]) if deployment else None
    return None
