"""A local API server replaying recorded objects through list and watch, with the API server's
resume semantics and the failures a watcher must survive.

Extends the sensor's `FakeApiServer` (its fixtures, 404s and kubeconfig) with what a watcher needs:
- collections for every resource the watcher follows, cluster-wide or per namespace;
- an etcd-like global resourceVersion: every change gets the next one and goes into the
  collection's event log; list items carry no kind/apiVersion, as the real server's do not;
- list pagination (`limit`, `continue`);
- watch (`watch=true`) as chunked JSON lines: the events after the requested resourceVersion, then
  new ones as they happen, until `timeoutSeconds`; BOOKMARKs when asked by a scripted fault;
- compaction: a watch from before the compacted point gets 410 Gone, as an ERROR event in a 200
  stream (what kube-apiserver sends for "too old resource version") or as an HTTP 410 Status;
- scripted faults per watch request: drop the connection mid-event, bookmark then end;
- connection resets before any answer (an API server restarting), for the next N requests.
Every request is recorded (path and parsed query) so tests can check what the client asked for.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.sensor.sensor_fake_apiserver import FakeApiServer

FIXTURES = Path(__file__).parent / "fixtures"

# resource -> (group/version prefix, list kind, item apiVersion)
ROUTES: dict[str, tuple[str, str, str]] = {
    "pods": ("api/v1", "PodList", "v1"),
    "serviceaccounts": ("api/v1", "ServiceAccountList", "v1"),
    "deployments": ("apis/apps/v1", "DeploymentList", "apps/v1"),
    "replicasets": ("apis/apps/v1", "ReplicaSetList", "apps/v1"),
    "roles": ("apis/rbac.authorization.k8s.io/v1", "RoleList", "rbac.authorization.k8s.io/v1"),
    "rolebindings": ("apis/rbac.authorization.k8s.io/v1", "RoleBindingList", "rbac.authorization.k8s.io/v1"),
    "clusterroles": ("apis/rbac.authorization.k8s.io/v1", "ClusterRoleList", "rbac.authorization.k8s.io/v1"),
    "clusterrolebindings": (
        "apis/rbac.authorization.k8s.io/v1",
        "ClusterRoleBindingList",
        "rbac.authorization.k8s.io/v1",
    ),
}
_PATH = re.compile(r"^/(api/v1|apis/[^/]+/v1)(?:/namespaces/([^/]+))?/([a-z]+)$")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def gone_status(requested: str, oldest: int) -> dict[str, Any]:
    # The Status kube-apiserver sends when a watch starts before the compacted revision.
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"too old resource version: {requested} ({oldest})",
        "reason": "Expired",
        "code": 410,
    }


@dataclass
class Request:
    resource: str
    namespace: str | None
    query: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    reset: bool = False

    @property
    def watch(self) -> bool:
        return self.query.get("watch") in ("true", "1", "True")


@dataclass
class Collection:
    name: str
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # namespace/name -> object (with kind)
    log: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    compacted: int = 0  # watches from a resourceVersion below this get 410
    gone_as_http: bool = False
    faults: deque[str] = field(default_factory=deque)
    resets: int = 0  # the next requests (list or watch) get their connection reset before any answer


def _key(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


class ReplayApiServer(FakeApiServer):
    def __init__(self, first_version: int = 4_829_000) -> None:
        super().__init__()
        self.version = first_version
        self.collections = {name: Collection(name) for name in ROUTES}
        self.log: list[Request] = []
        self._changed = threading.Condition()
        self._closing = False
        self.bookmarks: list[int] = []

    # ------------------------------------------------------------------ state
    def _next_version(self) -> int:
        self.version += 1
        return self.version

    def seed(self, resource: str, objects: list[dict[str, Any]]) -> None:
        """Objects present before the watcher starts (no events for them)."""
        with self._changed:
            for obj in objects:
                obj = copy.deepcopy(obj)
                obj["metadata"]["resourceVersion"] = str(self._next_version())
                self.collections[resource].objects[_key(obj)] = obj

    def change(self, resource: str, event_type: str, obj: dict[str, Any], *, silent: bool = False) -> int:
        """Apply a change; open watches see it unless `silent` (it happened while nobody watched, and
        its event is compacted away: a watch from before it gets 410)."""
        with self._changed:
            collection = self.collections[resource]
            obj = copy.deepcopy(obj)
            version = self._next_version()
            obj["metadata"]["resourceVersion"] = str(version)
            if event_type == "DELETED":
                collection.objects.pop(_key(obj), None)
            else:
                collection.objects[_key(obj)] = obj
            if silent:
                collection.compacted = version
            else:
                collection.log.append((version, event_type, obj))
            self._changed.notify_all()
            return version

    def compact(self, resource: str) -> int:
        """Forget the history before now: a watch must start at the current version or later."""
        with self._changed:
            self.collections[resource].compacted = self.version
            return self.version

    def fault(self, resource: str, *faults: str) -> None:
        """Scripted behaviour of the next watch requests: `drop_after:N` (N whole events, then half of
        the next and a reset connection), `bookmark` (the version moves on, a BOOKMARK at it, the
        history before it compacted, end of stream), `internal_error` (an ERROR event with a 500 Status)."""
        self.collections[resource].faults.extend(faults)

    def calls(self, resource: str, watch: bool | None = None) -> list[Request]:
        return [r for r in list(self.log) if r.resource == resource and (watch is None or r.watch == watch)]

    def lists(self, resource: str) -> list[Request]:
        """List requests that start a list (not the continuation pages)."""
        return [r for r in self.calls(resource, watch=False) if "continue" not in r.query]

    # ------------------------------------------------------------------ list
    def list_body(self, resource: str, namespace: str | None, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        prefix, list_kind, api_version = ROUTES[resource]
        with self._changed:
            items = [
                copy.deepcopy(o)
                for o in self.collections[resource].objects.values()
                if namespace is None or o["metadata"].get("namespace") == namespace
            ]
            version = self.version
        items.sort(key=_key)
        for item in items:  # list items carry no kind/apiVersion on the wire
            item.pop("kind", None)
            item.pop("apiVersion", None)
        start = int(query.get("continue") or 0)
        limit = int(query.get("limit") or 0) or len(items) or 1
        page = items[start : start + limit]
        meta: dict[str, Any] = {"resourceVersion": str(version)}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
            meta["remainingItemCount"] = len(items) - start - limit
        return 200, {"kind": list_kind, "apiVersion": api_version, "metadata": meta, "items": page}

    # ------------------------------------------------------------------ watch
    def watch_events(
        self, resource: str, namespace: str | None, since: int, timeout: float, fault: str | None
    ) -> Iterator[tuple[str, bool]]:
        """Lines of the watch stream, each with `torn`: send half of it and reset the connection."""
        collection = self.collections[resource]
        if fault == "bookmark":
            # Other resources moved the version on; nothing of ours changed up to it: a BOOKMARK,
            # then the history before it is compacted away (only a client that kept it can resume).
            with self._changed:
                version = self._next_version()
                collection.compacted = version
                self.bookmarks.append(version)
            kind = ROUTES[resource][1].removesuffix("List")
            bookmark = {"kind": kind, "apiVersion": ROUTES[resource][2], "metadata": {"resourceVersion": str(version)}}
            yield json.dumps({"type": "BOOKMARK", "object": bookmark}), False
            return
        if fault == "internal_error":  # what a watch gets when, say, etcd is briefly unavailable
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "etcdserver: request timed out",
                "reason": "InternalError",
                "code": 500,
            }
            yield json.dumps({"type": "ERROR", "object": status}), False
            return
        drop_after = int(fault.split(":", 1)[1]) if fault and fault.startswith("drop_after:") else None
        deadline, sent, cursor = time.monotonic() + timeout, 0, since
        while True:
            with self._changed:
                pending = [
                    (v, t, o)
                    for v, t, o in collection.log
                    if v > cursor and (namespace is None or o["metadata"].get("namespace") == namespace)
                ]
                if not pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._closing:
                        return
                    self._changed.wait(min(remaining, 0.2))
                    continue
            for version, event_type, obj in pending:
                torn = drop_after is not None and sent >= drop_after
                yield json.dumps({"type": event_type, "object": obj}), torn
                if torn:
                    return
                sent += 1
                cursor = version

    def take_reset(self, request: Request) -> bool:
        collection = self.collections[request.resource]
        if collection.resets <= 0:
            return False
        collection.resets -= 1
        request.reset = True
        return True

    def watch_lines(
        self, resource: str, namespace: str | None, query: dict[str, str]
    ) -> tuple[dict[str, Any] | None, Iterator[tuple[str, bool]]]:
        """(an HTTP 410 Status, or None and the lines of a 200 watch stream)."""
        collection = self.collections[resource]
        since = int(query.get("resourceVersion") or self.version)
        if since < collection.compacted:
            status = gone_status(str(since), collection.compacted)
            if collection.gone_as_http:
                return status, iter([])
            return None, iter([(json.dumps({"type": "ERROR", "object": status}), False)])
        fault = collection.faults.popleft() if collection.faults else None
        timeout = float(query.get("timeoutSeconds") or 30)
        return None, self.watch_events(resource, namespace, since, timeout, fault)

    # ------------------------------------------------------------------ HTTP
    @contextmanager
    def running(self) -> Iterator[ReplayApiServer]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # chunked watch streams, keep-alive lists

            def _json(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                match = _PATH.match(url.path)
                if not match or match.group(3) not in ROUTES:
                    code, body = api.handle(self.path)
                    self._json(code, body)
                    return
                _, namespace, resource = match.groups()
                request = Request(resource, namespace, query)
                api.log.append(request)
                if api.take_reset(request):  # the API server (or what is in front of it) is away
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if not request.watch:
                    self._json(*api.list_body(resource, namespace, query))
                    return
                self._watch(resource, namespace, query)

            def _watch(self, resource: str, namespace: str | None, query: dict[str, str]) -> None:
                gone, lines = api.watch_lines(resource, namespace, query)
                if gone is not None:
                    self._json(410, gone)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for line, torn in lines:
                    data = line.encode() + b"\n"
                    if torn:  # the chunk announced whole, half of it sent, then the connection reset
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data[: len(data) // 2])
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    self._chunk(data)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            with self._changed:
                self._closing = True
                self._changed.notify_all()
            server.shutdown()
            server.server_close()
