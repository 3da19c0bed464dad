"""Tetragon export JSON (process_exec, process_exit, process_kprobe) -> RawSensorEvent.

Tetragon names the pod's workload (the Deployment for ReplicaSet-owned pods), so its events
arrive already attributed.
"""

from __future__ import annotations

import os
from typing import Any

from edges.intake.sensorcommon import (
    UnsupportedEvent,
    deployment_from_pod,
    parse_time,
    split_args,
    stable_id,
)
from runward.core.contracts import (
    Attribution,
    CapabilityDetail,
    ConnectDetail,
    ExecDetail,
    ExitDetail,
    FileOpenDetail,
    RawSensorEvent,
)
from runward.core.contracts.common import deployment_id
from runward.core.redaction import redact_argv

_FILE_HOOKS = {
    "security_file_permission",
    "security_file_open",
    "fd_install",
    "security_mmap_file",
    "security_bprm_check",
    "vfs_open",
    "do_filp_open",
}
_CONNECT_HOOKS = {"tcp_connect", "__sys_connect", "security_socket_connect", "ip4_datagram_connect", "udp_sendmsg"}
_MAY_WRITE = 2  # security_file_permission's mask argument


def translate(item: dict[str, Any]) -> RawSensorEvent:
    for kind in ("process_exec", "process_exit", "process_kprobe"):
        if kind in item:
            body = item[kind]
            if not isinstance(body, dict):
                raise UnsupportedEvent(f"Tetragon {kind} must be a JSON object, got {type(body).__name__}")
            break
    else:
        known = ", ".join(k for k in item if k not in {"node_name", "time", "aggregation_info"})
        raise UnsupportedEvent(
            f"Tetragon event {known or '?'} is not translated (supported: process_exec, process_exit, process_kprobe)"
        )
    process: dict[str, Any] = body.get("process") or {}
    parent: dict[str, Any] = body.get("parent") or {}
    if kind == "process_exec":
        binary = process.get("binary")
        if not binary:
            raise UnsupportedEvent("process_exec without process.binary")
        detail: Any = ExecDetail(
            binary=binary,
            argv=redact_argv([binary, *split_args(str(process.get("arguments") or ""))])[0],
            ppid=parent.get("pid"),
            parent_comm=_comm(parent.get("binary")),
        )
    elif kind == "process_exit":
        detail = ExitDetail(exit_code=int(body.get("status") or 0))
    else:
        detail = _kprobe(body)
    return RawSensorEvent(
        event_id=stable_id("tetragon", item),
        ts=parse_time(item.get("time")),
        pid=process.get("pid"),
        comm=_comm(process.get("binary")),
        attribution=_attribution(item, process),
        detail=detail,
    )


def _kprobe(body: dict[str, Any]) -> Any:
    function = str(body.get("function_name") or "")
    args: list[dict[str, Any]] = body.get("args") or []
    if function in _FILE_HOOKS:
        path = next(
            (
                a[k]["path"]
                for a in args
                for k in ("file_arg", "path_arg", "linux_binprm_arg")
                if k in a and a[k].get("path")
            ),
            None,
        )
        if path is None:
            raise UnsupportedEvent(f"kprobe {function} without a file_arg/path_arg path")
        mask = next((a["int_arg"] for a in args if "int_arg" in a), 0)
        flags = os.O_WRONLY if function == "security_file_permission" and int(mask) & _MAY_WRITE else 0
        return FileOpenDetail(path=path, flags=flags)
    if function in _CONNECT_HOOKS:
        sock = next(
            (a.get("sock_arg") or a.get("sockaddr_arg") for a in args if "sock_arg" in a or "sockaddr_arg" in a), None
        )
        if not sock or not (sock.get("daddr") or sock.get("addr")):
            raise UnsupportedEvent(f"kprobe {function} without a sock_arg destination")
        address = sock.get("daddr") or sock.get("addr")
        protocol = "udp" if "UDP" in str(sock.get("protocol", "")) or function.startswith("udp") else "tcp"
        return ConnectDetail(
            kind="connect",
            family="ipv6" if "INET6" in str(sock.get("family")) else "ipv4",
            address=address,
            port=int(sock.get("dport") or sock.get("port") or 0),
            protocol=protocol,
        )
    if function == "cap_capable":
        cap = next((a["capability_arg"] for a in args if "capability_arg" in a), None)
        if cap and cap.get("name"):
            return CapabilityDetail(capability=str(cap["name"]))
    raise UnsupportedEvent(
        f"kprobe {function or '?'!r} has no Runward sensor detail "
        "(supported: file hooks, tcp_connect and friends, cap_capable)"
    )


def _attribution(item: dict[str, Any], process: dict[str, Any]) -> Attribution:
    pod: dict[str, Any] = process.get("pod") or {}
    namespace, name = pod.get("namespace"), pod.get("name")
    workload, workload_kind = pod.get("workload"), pod.get("workload_kind")
    deployment = None
    if namespace and workload and workload_kind in (None, "", "Deployment"):
        deployment = deployment_id(namespace, workload)
    elif namespace and not workload_kind and (guess := deployment_from_pod(name)):
        deployment = deployment_id(namespace, guess)
    container = str((pod.get("container") or {}).get("id") or "").split("://")[-1] or None
    return Attribution(
        node=item.get("node_name"), namespace=namespace, pod=name, container_id=container, deployment=deployment
    )


def _comm(binary: Any) -> str | None:
    return os.path.basename(str(binary))[:15] if binary else None
