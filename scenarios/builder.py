"""Build scenario files: one header line, then raw records as `runward replay` reads them.

A scenario is a JSON-lines file. Its first line is `{"scenario": {...}}`, the header:

    name, kind (attack | benign), surfaces (input, tool, identity, multi_agent, ...),
    description, settings (autonomy tier = the observation window of its Deployments,
    story gap it was written for), expected outcome:
        stories: [{deployment, status, surfaces?, min_severity?, spans?}]   (every story the
                 scenario must yield; any other story of its Deployments fails it)
        policy_must_not_contain: [...]  (strings no policy of its Deployments may hold)

then one line per raw record (`{"topic", "key", "value"}`), `{"barrier": true}` (wait until
ingest has handled what was sent: Kafka orders a partition, not topics) or `{"pause": seconds}`
(slow delivery). Records use the namespace `rw-scenario`; `runward eval` rewrites it and every
id (UUIDs, W3C trace and span ids) per run, so scenarios run side by side in one pipeline and
again on the same broker. Recorded time spans days (the window is the autonomy tier's); the
replay rebases it so the last event is now and the pipeline's clock-skew allowance lets it stand.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

NS = "rw-scenario"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
SITE = "/usr/local/lib/python3.11/site-packages"
SYSCALLS = ["read", "write", "openat", "close", "fstat", "mmap", "futex", "epoll_wait", "socket", "connect"]


def ts(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@dataclass
class Scenario:
    name: str
    kind: str
    surfaces: list[str]
    description: str
    autonomy: str = "low"
    expect_stories: list[dict[str, Any]] = field(default_factory=list)
    policy_must_not_contain: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    _n: int = 0
    _hashes: dict[str, str] = field(default_factory=dict)

    # --- ids -------------------------------------------------------------------------------

    def uid(self) -> str:
        self._n += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"runward-scenario/{self.name}/{self._n}"))

    def trace_id(self) -> str:
        return uuid.UUID(self.uid()).hex

    def span_id(self) -> str:
        return uuid.UUID(self.uid()).hex[:16]

    def dep(self, name: str) -> str:
        return f"{NS}/{name}"

    # --- records ---------------------------------------------------------------------------

    def emit(self, topic: str, key: str, value: dict[str, Any]) -> None:
        self.records.append({"topic": topic, "key": key, "value": value})

    def barrier(self) -> None:
        self.records.append({"barrier": True})

    def pause(self, seconds: float) -> None:
        self.records.append({"pause": seconds})

    def k8s(self, kind: str, obj: dict[str, Any], when: datetime, type_: str = "ADDED") -> None:
        meta = obj["metadata"]
        self.emit(
            "runward.raw.k8s",
            f"{meta['namespace']}/{meta['name']}",
            {"source": "k8s_object", "type": type_, "ts": ts(when), "object": {"kind": kind, **obj}},
        )

    def _template(self, name: str, image: str, pod_hash: str | None = None) -> dict[str, Any]:
        labels = {"app": name} | ({"pod-template-hash": pod_hash} if pod_hash else {})
        return {
            "metadata": {"labels": labels},
            "spec": {"serviceAccountName": name, "containers": [{"name": "agent", "image": image}]},
        }

    def deployment(
        self, name: str, image: str, when: datetime, replicas: int = 2, generation: int = 1, type_: str = "ADDED"
    ) -> None:
        self.k8s(
            "Deployment",
            {
                "apiVersion": "apps/v1",
                "metadata": {
                    "name": name,
                    "namespace": NS,
                    "uid": self._hashes.setdefault(f"dep-uid:{name}", self.uid()),
                    "generation": generation,
                    "annotations": {"runward.io/autonomy": self.autonomy},
                    "labels": {"app": name},
                },
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": name}},
                    "template": self._template(name, image),
                },
            },
            when,
            type_,
        )

    def replica_set(self, name: str, pod_hash: str, image: str, when: datetime, replicas: int = 2) -> str:
        rs = f"{name}-{pod_hash}"
        self.k8s(
            "ReplicaSet",
            {
                "apiVersion": "apps/v1",
                "metadata": {
                    "name": rs,
                    "namespace": NS,
                    "uid": self.uid(),
                    "labels": {"app": name, "pod-template-hash": pod_hash},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": name,
                            "uid": self._hashes.setdefault(f"dep-uid:{name}", self.uid()),
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": name}},
                    "template": self._template(name, image, pod_hash),
                },
            },
            when,
        )
        return rs

    def pod(self, name: str, rs: str, suffix: str, when: datetime) -> str:
        pod_name = f"{rs}-{suffix}"
        self.k8s(
            "Pod",
            {
                "apiVersion": "v1",
                "metadata": {
                    "name": pod_name,
                    "namespace": NS,
                    "uid": self.uid(),
                    "labels": {"app": name, "pod-template-hash": rs.rsplit("-", 1)[1]},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": rs,
                            "uid": self.uid(),
                            "controller": True,
                        }
                    ],
                },
                "spec": {"serviceAccountName": name, "containers": [{"name": "agent", "image": "x"}]},
                "status": {
                    "phase": "Running",
                    "containerStatuses": [
                        {"name": "agent", "containerID": f"containerd://{uuid.UUID(self.uid()).hex}"}
                    ],
                },
            },
            when,
        )
        return pod_name

    def sensor(self, name: str, pod_name: str, when: datetime, detail: dict[str, Any], pid: int = 1) -> None:
        self.emit(
            "runward.raw.sensor",
            self.dep(name),
            {
                "event_id": self.uid(),
                "ts": ts(when),
                "pid": pid,
                "comm": "python3",
                "attribution": {
                    "node": "node-a",
                    "cgroup_id": 4242,
                    "namespace": NS,
                    "pod": pod_name,
                    "deployment": self.dep(name),
                    "service_account": name,
                },
                "detail": detail,
            },
        )

    def connect(self, name: str, pod_name: str, when: datetime, host: str, address: str, port: int = 443) -> None:
        self.sensor(
            name,
            pod_name,
            when,
            {"kind": "connect", "address": address, "port": port, "protocol": "tcp", "dns_name": host},
        )

    def llm(self, name: str, pod_name: str, when: datetime, **fields: Any) -> str:
        event_id = self.uid()
        self.emit(
            "runward.raw.llm",
            self.dep(name),
            {
                "event_id": event_id,
                "ts": ts(when),
                "attribution": {"namespace": NS, "pod": pod_name, "deployment": self.dep(name)},
                **fields,
            },
        )
        return event_id

    def chat(self, name: str, pod_name: str, when: datetime, text: str, **fields: Any) -> None:
        self.llm(
            name,
            pod_name,
            when,
            operation="chat",
            provider="openai",
            request_model="gpt-4o",
            response_model="gpt-4o-2024-08-06",
            input_messages=[text],
            **fields,
        )

    def tool(self, name: str, pod_name: str, when: datetime, tool: str, args: dict[str, Any], **fields: Any) -> None:
        self.llm(
            name,
            pod_name,
            when,
            operation="execute_tool",
            mcp_server="crm",
            tool_name=tool,
            tool_call_id=self.uid(),
            tool_arguments=args,
            **fields,
        )

    def audit(
        self,
        sa: str,
        verb: str,
        resource: str,
        when: datetime,
        name: str | None = None,
        code: int = 200,
        group: str | None = None,
        subresource: str | None = None,
    ) -> None:
        ref: dict[str, Any] = {"resource": resource, "namespace": NS, "apiVersion": "v1"}
        if group:
            ref["apiGroup"] = group
        if name:
            ref["name"] = name
        if subresource:
            ref["subresource"] = subresource
        audit_id = self.uid()
        self.emit(
            "runward.raw.k8s",
            audit_id,
            {
                "source": "k8s_audit",
                "event": {
                    "kind": "Event",
                    "apiVersion": "audit.k8s.io/v1",
                    "level": "Metadata",
                    "auditID": audit_id,
                    "stage": "ResponseComplete",
                    "requestURI": f"/api/v1/namespaces/{NS}/{resource}" + (f"/{name}" if name else ""),
                    "verb": verb,
                    "user": {
                        "username": f"system:serviceaccount:{NS}:{sa}",
                        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{NS}", "system:authenticated"],
                    },
                    "sourceIPs": ["10.244.1.17"],
                    "userAgent": "python-requests/2.32.3",
                    "objectRef": ref,
                    "responseStatus": {"metadata": {}, "code": code},
                    "requestReceivedTimestamp": ts(when),
                    "stageTimestamp": ts(when + timedelta(milliseconds=12)),
                },
            },
        )

    # --- composite steps ---------------------------------------------------------------------

    def agent(
        self, name: str, image: str = "ghcr.io/acme/agent:1.0.0", replicas: int = 2, pod_hash: str = "6b7c8d9f4"
    ) -> list[str]:
        """A Deployment, its ReplicaSet and pods, announced before T0, then each pod's start-up."""
        self.deployment(name, image, T0 - timedelta(minutes=5), replicas=replicas)
        rs = self.replica_set(name, pod_hash, image, T0 - timedelta(minutes=5), replicas=replicas)
        pods = [self.pod(name, rs, f"p{i}x{pod_hash[:3]}", T0 - timedelta(minutes=4)) for i in range(replicas)]
        self.barrier()
        for pod_name in pods:
            self.startup(name, pod_name, T0)
        return pods

    def startup(self, name: str, pod_name: str, when: datetime) -> None:
        self.sensor(
            name,
            pod_name,
            when,
            {"kind": "exec", "binary": "/usr/local/bin/python3", "argv": ["python3", "-m", "agent"], "ppid": 0},
        )
        self.sensor(name, pod_name, when + timedelta(seconds=1), {"kind": "syscalls", "syscalls": SYSCALLS})

    def header(self) -> dict[str, Any]:
        return {
            "scenario": {
                "name": self.name,
                "kind": self.kind,
                "surfaces": self.surfaces,
                "description": self.description,
                "settings": {"autonomy": self.autonomy, "namespace": NS},
                "expect": {
                    "stories": self.expect_stories,
                    "policy_must_not_contain": self.policy_must_not_contain,
                },
            }
        }

    def render(self) -> str:
        lines = [json.dumps(self.header())] + [json.dumps(r) for r in self.records]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> Path:
        path = folder / f"{self.name}.jsonl"
        path.write_text(self.render())
        return path
