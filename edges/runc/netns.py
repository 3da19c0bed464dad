"""An egress allowlist the kernel enforces: a network namespace, a veth pair to the host, nftables.

The workload's namespace has one route, through the veth to the host. On the host, an nftables
table of its own (hook prerouting, matched on the veth: it sees every packet the workload sends,
to the host or beyond, before routing) accepts replies and the
allowlisted `address . protocol . port` triples, and drops everything else after adding it to a
dynamic set: reading that set is how the proof knows which destinations were refused. Names
in the allowlist are resolved on the host when the jail is made; IPv6 is off in the namespace
(the allowlist is IPv4), so nothing leaves by a path the rules do not see. Reaching allowlisted
destinations beyond the host needs IPv4 forwarding on the host (net.ipv4.ip_forward), which the
jail does not switch on by itself; it masquerades what it forwards. Runward's own services on the
host side of the veth (the MCP tool gateway of `runward run --enforce`) are let through by a set
of their own (`allow_service`), never mixed with the learnt allowlist.

A jail made for an agent (`deployment`) logs each new connection outside the allowlist with the
prefix `runward-egress:<namespace>/<name>: ` (rate-limited), which the kernel-log collector
(`sensor.seccomplog`) publishes as the agent's audit evidence. With `refuse=False` (a bundle in
audit or observe) such a connection is logged, recorded in the same set and let through: audit
lists what enforce would refuse and breaks nothing, as its seccomp profile only logs.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from runward.core.contracts.common import deployment_id


class JailError(RuntimeError):
    """The namespace or its rules could not be set up (names the command that failed)."""


def _run(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(list(args), input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise JailError(f"`{' '.join(args)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def subnet_for(deployment: str) -> ipaddress.IPv4Network:
    """A /30 for the veth pair, stable per agent (the APD may name the host side as a destination)."""
    digest = hashlib.sha256(deployment.encode()).digest()
    return ipaddress.IPv4Network(f"10.231.{digest[0]}.{digest[1] & 0xFC}/30")


def _endpoint(entry: str) -> tuple[str, int, str]:
    host, _, rest = entry.rpartition(":")
    port, _, protocol = rest.partition("/")
    if not host or not port.isdigit():
        raise JailError(f"allowlist entry {entry!r} is not host:port[/protocol]")
    return host.strip("[]"), int(port), (protocol or "tcp").lower()


def _addresses(host: str) -> list[str]:
    try:
        ip = ipaddress.ip_address(host)
        return [str(ip)] if ip.version == 4 else []
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET)
    except socket.gaierror:
        return []  # unresolvable here: nothing to allow, and the proof will say what was refused
    return sorted({str(info[4][0]) for info in infos})


def _nameservers() -> list[str]:
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        return []
    found = [line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1]
    return [ns for ns in found if ipaddress.ip_address(ns).version == 4]


@dataclass
class EgressJail:
    """`with EgressJail(allowlist, subnet) as jail:` run runc with `netns=jail.name`; then `jail.refused()`."""

    allowlist: Sequence[str]
    subnet: ipaddress.IPv4Network
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    unresolved: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    deployment: str | None = None
    refuse: bool = True
    _refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.deployment is not None:
            # It is written into the ruleset's log prefix: only a Deployment id, never other text.
            namespace, _, name = self.deployment.partition("/")
            try:
                deployment_id(namespace, name)
            except ValueError as exc:
                raise JailError(str(exc)) from None

    @property
    def name(self) -> str:
        return f"runward-{self.token}"

    @property
    def host_if(self) -> str:
        return f"rwh{self.token}"

    @property
    def table(self) -> str:
        return f"runward_{self.token}"

    @property
    def host_ip(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def guest_ip(self) -> str:
        return str(self.subnet.network_address + 2)

    def allowed(self) -> list[str]:
        """`address . protocol . port` nftables elements of the allowlist (names resolved here)."""
        elements: set[str] = set()
        self.unresolved = []
        names = False
        for entry in self.allowlist:
            host, port, protocol = _endpoint(entry)
            addresses = _addresses(host)
            if not addresses:
                self.unresolved.append(entry)
            names = names or host != (addresses[0] if addresses else host)
            elements.update(f"{a} . {protocol} . {port}" for a in addresses)
        if names:
            # Names must resolve inside the namespace too: allow the host's own resolvers.
            elements.update(f"{ns} . {p} . 53" for ns in _nameservers() for p in ("udp", "tcp"))
        return sorted(elements)

    def __enter__(self) -> EgressJail:
        try:
            self._setup()
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self._refused = self._read_refused()
        self._teardown()

    def allow_service(self, port: int, protocol: str = "tcp") -> str:
        """Let the workload reach one of runward's own services listening on the host side of the
        veth (the MCP tool gateway). Kept in a set of its own, apart from the bundle's allowlist:
        it is not a learnt destination, and `services` names it for the run's report."""
        if not 0 < port < 65536 or protocol not in ("tcp", "udp"):
            raise JailError(f"not a service port: {port}/{protocol}")
        element = f"{self.host_ip} . {protocol} . {port}"
        _run("nft", "add", "element", "inet", self.table, "services", f"{{ {element} }}")
        entry = f"{self.host_ip}:{port}/{protocol}"
        self.services.append(entry)
        return entry

    def refused(self) -> list[str]:
        """Destinations outside the allowlist so far (`ip:port/protocol`; dropped, or with
        `refuse=False` let through), also after the jail is gone."""
        return self._refused or self._read_refused()

    def _setup(self) -> None:
        guest_if = f"rwg{self.token}"
        _run("ip", "netns", "add", self.name)
        _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", guest_if)
        _run("ip", "link", "set", guest_if, "netns", self.name)
        _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _run("ip", "link", "set", self.host_if, "up")
        inside = ("ip", "netns", "exec", self.name)
        _run(*inside, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
        _run(*inside, "ip", "addr", "add", f"{self.guest_ip}/30", "dev", guest_if)
        _run(*inside, "ip", "link", "set", guest_if, "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        _run(*inside, "ip", "route", "add", "default", "via", self.host_ip)
        _run("nft", "-f", "-", stdin=self._ruleset())

    def _ruleset(self) -> str:
        elements = self.allowed()
        allowed = f"elements = {{ {', '.join(elements)} }}" if elements else ""
        triple = "ip daddr . meta l4proto . th dport"
        verdict = "drop" if self.refuse else "accept"
        # Only a new connection is logged, at most 20 a second: a flood must not flood the kernel log.
        log = (
            f'\n        iifname "{self.host_if}" ct state new limit rate 20/second burst 40 packets '
            f'log prefix "runward-egress:{self.deployment}: "'
            if self.deployment is not None
            else ""
        )
        guard = f"""
        iifname "{self.host_if}" ct state established,related accept
        iifname "{self.host_if}" ip daddr . meta l4proto . th dport @allowed accept
        iifname "{self.host_if}" ip daddr . meta l4proto . th dport @services accept
        iifname "{self.host_if}" meta l4proto {{ tcp, udp }} update @refused {{ {triple} }}{log}
        iifname "{self.host_if}" counter {verdict}"""
        return f"""
table inet {self.table} {{
    set allowed {{ type ipv4_addr . inet_proto . inet_service; {allowed} }}
    set services {{ type ipv4_addr . inet_proto . inet_service; }}
    set refused {{ type ipv4_addr . inet_proto . inet_service; flags dynamic; size 65535; }}
    chain guard {{ type filter hook prerouting priority -10; policy accept; {guard}
    }}
    chain outbound_nat {{ type nat hook postrouting priority 100; policy accept;
        ip saddr {self.subnet} oifname != "{self.host_if}" masquerade
    }}
}}
"""

    def _read_refused(self) -> list[str]:
        try:
            out = _run("nft", "-j", "list", "set", "inet", self.table, "refused")
        except JailError:
            return []
        found: set[str] = set()
        for item in json.loads(out).get("nftables", []):
            for element in item.get("set", {}).get("elem", []) or []:
                value = element.get("elem", {}).get("val", element) if isinstance(element, dict) else element
                parts = value.get("concat", []) if isinstance(value, dict) else []
                if len(parts) == 3:
                    address, protocol, port = parts
                    found.add(f"{address}:{port}/{protocol}")
        return sorted(found)

    def _teardown(self) -> None:
        for command in (
            ("nft", "delete", "table", "inet", self.table),
            ("ip", "link", "delete", self.host_if),
            ("ip", "netns", "delete", self.name),
        ):
            subprocess.run(list(command), capture_output=True)
