"""A tiny HTTP server replaying recorded Kubernetes API objects, so the resolver runs the
real `kubernetes` client (request building, JSON deserialisation) without a cluster.

Serves the two requests the resolver makes, with the API server's semantics:
  GET /api/v1/pods?fieldSelector=spec.nodeName=<node>       -> PodList (filtered)
  GET /apis/apps/v1/namespaces/<ns>/replicasets/<name>      -> ReplicaSet, or a 404 Status
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).parent / "fixtures" / "k8s"


def load_pods() -> dict[str, Any]:
    return json.loads((FIXTURES / "pods.json").read_text())


def load_replicasets() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "replicasets.json").read_text())


class FakeApiServer:
    def __init__(self, pods: dict[str, Any] | None = None, replicasets: list[dict[str, Any]] | None = None):
        self.pod_list = pods if pods is not None else load_pods()
        self.replicasets = replicasets if replicasets is not None else load_replicasets()
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _not_found(self, kind: str, name: str) -> tuple[int, dict[str, Any]]:
        return 404, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f'{kind}.apps "{name}" not found',
            "reason": "NotFound",
            "details": {"name": name, "group": "apps", "kind": kind},
            "code": 404,
        }

    def handle(self, raw_path: str) -> tuple[int, dict[str, Any]]:
        self.requests.append(raw_path)
        url = urlparse(raw_path)
        if url.path == "/api/v1/pods":
            selector = parse_qs(url.query).get("fieldSelector", [""])[0]
            node = selector.split("=", 1)[1] if selector.startswith("spec.nodeName=") else None
            listed = copy.deepcopy(self.pod_list)
            listed["items"] = [p for p in listed["items"] if node is None or p["spec"].get("nodeName") == node]
            return 200, listed
        match = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/replicasets/([^/]+)", url.path)
        if match:
            ns, name = match.groups()
            for rs in self.replicasets:
                if rs["metadata"]["namespace"] == ns and rs["metadata"]["name"] == name:
                    return 200, rs
            return self._not_found("replicasets", name)
        return 404, {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": 404,
            "reason": "NotFound",
            "message": "the server could not find the requested resource",
        }

    @contextmanager
    def running(self) -> Iterator[FakeApiServer]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                code, body = api.handle(self.path)
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

    def kubeconfig(self, path: Path) -> Path:
        """A kubeconfig pointing at this server (what the sensor reads outside a cluster)."""
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "fake", "user": {}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                }
            )
        )
        return path
