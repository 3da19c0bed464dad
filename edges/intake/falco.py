"""Falco alerts (json_output) -> RawSensorEvent, so teams running Falco can feed Runward.

Falco reports rule matches, not every syscall: each alert becomes the one observation it is
about (the file opened, the program executed, the connection made), attributed from its
k8s and container fields.
"""

from __future__ import annotations

import os
import re
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
    ConnectDetail,
    ExecDetail,
    FileOpenDetail,
    RawSensorEvent,
)
from runward.core.contracts.common import deployment_id
from runward.core.redaction import redact_argv

_OPEN = {"open", "openat", "openat2", "creat", "open_by_handle_at"}
_EXEC = {"execve", "execveat"}
_CONNECT = {"connect"}
_ACCEPT = {"accept", "accept4"}
_FD_NAME = re.compile(r"^\[?(?P<cip>[^\]]+?)\]?:(?P<cport>\d+)->\[?(?P<sip>[^\]]+?)\]?:(?P<sport>\d+)$")


def translate(alert: dict[str, Any]) -> RawSensorEvent:
    fields: dict[str, Any] = alert.get("output_fields") or {}
    source = alert.get("source", "syscall")
    if source != "syscall":
        raise UnsupportedEvent(f"Falco source {source!r} is not a syscall event (rule {alert.get('rule')!r})")
    evt_type = str(fields.get("evt.type") or "")
    if evt_type in _OPEN:
        path = fields.get("fd.name") or fields.get("fs.path.name") or fields.get("evt.arg.name")
        if not path:
            raise UnsupportedEvent(f"rule {alert.get('rule')!r}: open without fd.name in output_fields")
        detail: Any = FileOpenDetail(path=str(path), flags=_open_flags(fields.get("evt.arg.flags")))
    elif evt_type in _EXEC:
        binary = fields.get("proc.exepath") or fields.get("proc.exe") or fields.get("proc.name")
        if not binary:
            raise UnsupportedEvent(f"rule {alert.get('rule')!r}: exec without proc.exepath/proc.name")
        cmdline = str(fields.get("proc.cmdline") or binary)
        detail = ExecDetail(
            binary=str(binary),
            argv=redact_argv(split_args(cmdline))[0],  # secrets never leave the node
            ppid=_int(fields.get("proc.ppid")),
            parent_comm=fields.get("proc.pname"),
        )
    elif evt_type in _CONNECT | _ACCEPT:
        detail = _connect(fields, "accept" if evt_type in _ACCEPT else "connect")
    else:
        raise UnsupportedEvent(
            f"Falco rule {alert.get('rule')!r} on evt.type {evt_type or '?'!r} has no Runward sensor detail "
            "(supported: open*, execve*, connect, accept*)"
        )
    return RawSensorEvent(
        event_id=stable_id("falco", alert),
        ts=parse_time(alert.get("time") or fields.get("evt.time")),
        pid=_int(fields.get("proc.pid")),
        comm=fields.get("proc.name"),
        attribution=_attribution(alert, fields),
        detail=detail,
    )


def _attribution(alert: dict[str, Any], fields: dict[str, Any]) -> Attribution:
    namespace = fields.get("k8s.ns.name") or fields.get("k8smeta.ns.name")
    pod = fields.get("k8s.pod.name") or fields.get("k8smeta.pod.name")
    name = fields.get("k8smeta.deployment.name") or fields.get("k8s.deployment.name") or deployment_from_pod(pod)
    container = fields.get("container.id")
    return Attribution(
        node=alert.get("hostname"),
        namespace=namespace,
        pod=pod,
        pod_uid=fields.get("k8s.pod.uid") or fields.get("k8smeta.pod.uid"),
        container_id=None if container in (None, "", "host") else str(container),
        deployment=deployment_id(namespace, name) if namespace and name else None,
    )


def _connect(fields: dict[str, Any], kind: str) -> ConnectDetail:
    address, port = fields.get("fd.sip"), fields.get("fd.sport")
    if kind == "connect" and (address is None or port is None):
        address, port = fields.get("fd.rip"), fields.get("fd.rport")
    if address is None or port is None:
        match = _FD_NAME.match(str(fields.get("fd.name") or ""))
        if not match:
            raise UnsupportedEvent("connect without fd.sip/fd.sport or a client->server fd.name")
        address, port = match.group("sip"), match.group("sport")
    proto = str(fields.get("fd.l4proto") or "tcp").lower()
    family = "ipv6" if ":" in str(address) else "ipv4"
    return ConnectDetail(
        kind=kind,
        family=family,
        address=str(address),
        port=int(port),
        protocol="udp" if proto == "udp" else "tcp",
        dns_name=fields.get("fd.sip.name") or None,
    )


def _open_flags(value: Any) -> int:
    """Falco renders flags as `O_RDONLY|O_CLOEXEC` (sometimes with a numeric prefix)."""
    if isinstance(value, int):
        return value
    text = str(value or "")
    if match := re.match(r"^(\d+)", text):
        return int(match.group(1))
    return sum(int(getattr(os, name, 0)) for name in re.findall(r"O_[A-Z]+", text))


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
