"""List + watch loops, one per resource (and namespace), sharing one API client and one producer."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from edges.kubewatch.objects import RevisionIndex, object_key, prepare, resource_version
from edges.kubewatch.resources import RESOURCES, Resource
from edges.kubewatch.sink import KafkaSink, Sink
from runward.core.config import Settings
from runward.core.contracts import K8sObjectEvent, utcnow

log = logging.getLogger(__name__)

GONE = 410
EventType = Literal["ADDED", "MODIFIED", "DELETED"]
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


@dataclass(frozen=True)
class Timing:
    watch_timeout_s: float = 300.0  # server-side timeoutSeconds, spread up to 2x so watches do not reconnect together
    read_grace_s: float = 30.0  # beyond it a silent connection is dead (bookmarks and timeouts arrive before)
    connect_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    page_size: int = 500


@dataclass
class WatchStats:
    """Counters per resource name, for logs and tests."""

    published: Counter[str] = field(default_factory=Counter)
    relists: Counter[str] = field(default_factory=Counter)
    gone: Counter[str] = field(default_factory=Counter)
    reconnects: Counter[str] = field(default_factory=Counter)  # after an error: drop, timeout, API error
    bookmarks: Counter[str] = field(default_factory=Counter)
    skipped_duplicates: Counter[str] = field(default_factory=Counter)


class Gone(Exception):
    """The resume point was compacted away (HTTP 410 or a watch ERROR event with code 410): relist."""


class WatchError(Exception):
    """A watch ERROR event other than 410: reconnect from the same resume point."""


class ResourceWatch:
    """One resource's list + watch, with the informer's resume rules (see the package docstring)."""

    def __init__(
        self,
        resource: Resource,
        api_client: k8s_client.ApiClient,
        namespace: str | None,
        sink: Sink,
        index: RevisionIndex,
        stop: threading.Event,
        timing: Timing,
        stats: WatchStats,
    ) -> None:
        self.resource = resource
        self.namespace = namespace if resource.namespaced else None
        self.sink, self.index, self.stop, self.timing, self.stats = sink, index, stop, timing, stats
        api = getattr(k8s_client, resource.api)(api_client)
        call = resource.list_namespaced if self.namespace and resource.list_namespaced else resource.list_all
        self._list_call = getattr(api, call)
        self.store: dict[str, tuple[str | None, dict[str, Any]]] = {}  # key -> (resourceVersion, object as published)
        self.resource_version: str | None = None  # the resume point; None: list first
        self._resync = threading.Event()
        self._response: Any = None
        self.name = f"{resource.name}" + (f"@{self.namespace}" if self.namespace else "")

    # ------------------------------------------------------------------ calls
    def _call(self, **kwargs: Any) -> Any:
        if self.namespace:
            kwargs["namespace"] = self.namespace
        try:
            return self._list_call(_preload_content=False, **kwargs)
        except ApiException as exc:
            if exc.status == GONE:
                raise Gone(f"{self.name}: {exc.reason}") from exc
            raise

    def list_pages(self) -> tuple[list[dict[str, Any]], str | None, str, str]:
        """Every object (paginated; an expired continue token is a 410: start again), the list's
        resourceVersion, and the kind and apiVersion of its items."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        kind, api_version = self.resource.kind, self.resource.api_version
        while True:
            kwargs: dict[str, Any] = {"limit": self.timing.page_size}
            if token:
                kwargs["_continue"] = token
            response = self._call(
                _request_timeout=(self.timing.connect_timeout_s, self.timing.read_grace_s + 30), **kwargs
            )
            try:
                page = json.loads(response.data)
            finally:
                response.release_conn()
            items.extend(page.get("items") or [])
            list_kind = str(page.get("kind") or "")
            kind = list_kind.removesuffix("List") or kind
            api_version = str(page.get("apiVersion") or api_version)
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, meta.get("resourceVersion"), kind, api_version

    def relist(self) -> None:
        """List and publish what changed since the last list or watch event: new objects ADDED, changed
        ones MODIFIED, vanished ones DELETED (with their last state), unchanged ones not at all."""
        if self._resync.is_set():
            self._resync.clear()
            self.store.clear()  # a record was lost: publish everything again
        items, list_version, kind, api_version = self.list_pages()
        self.stats.relists[self.resource.name] += 1
        seen: set[str] = set()
        for raw in items:
            raw.setdefault("kind", kind)
            raw.setdefault("apiVersion", api_version)
            key = object_key(raw)
            seen.add(key)
            known = self.store.get(key)
            if known is not None and known[0] == resource_version(raw):
                self.stats.skipped_duplicates[self.resource.name] += 1
                continue
            self._emit("MODIFIED" if known else "ADDED", raw)
        for key in sorted(self.store.keys() - seen):
            self._emit("DELETED", self.store[key][1])
        self.resource_version = list_version

    # ------------------------------------------------------------------ watch
    def watch_once(self) -> int:
        """One watch request from the resume point until the server ends it; returns events handled."""
        timeout = int(self.timing.watch_timeout_s * (1 + random.random()))
        response = self._call(
            watch=True,
            allow_watch_bookmarks=True,
            resource_version=self.resource_version,
            timeout_seconds=max(timeout, 1),
            _request_timeout=(self.timing.connect_timeout_s, timeout + self.timing.read_grace_s),
        )
        self._response = response
        handled = 0
        try:
            for line in iter_resp_lines(response):
                if self.stop.is_set() or self._resync.is_set():
                    break
                if line.strip():
                    self._handle(json.loads(line))
                    handled += 1
        finally:
            self._response = None
            response.close()
            response.release_conn()
        return handled

    def _handle(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "BOOKMARK":
            # Nothing changed up to this version for what we watch: resuming from here skips
            # events the server would otherwise replay, and keeps the resume point fresh enough
            # to outlive compaction while the objects themselves are quiet.
            self.resource_version = resource_version(obj) or self.resource_version
            self.stats.bookmarks[self.resource.name] += 1
            return
        if kind == "ERROR":
            if obj.get("code") == GONE:
                raise Gone(f"{self.name}: {obj.get('reason')}: {obj.get('message')}")
            raise WatchError(f"{self.name}: watch error {obj.get('code')} {obj.get('reason')}: {obj.get('message')}")
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            raise WatchError(f"{self.name}: unknown watch event type {kind!r}")
        version = resource_version(obj)
        known = self.store.get(object_key(obj))
        if kind != "DELETED" and known is not None and known[0] == version:
            self.stats.skipped_duplicates[self.resource.name] += 1
        else:
            self._emit(cast(EventType, kind), obj)
        self.resource_version = version or self.resource_version

    def _emit(self, event_type: EventType, raw: dict[str, Any]) -> None:
        raw.setdefault("kind", self.resource.kind)
        raw.setdefault("apiVersion", self.resource.api_version)
        self.index.observe(event_type, raw)
        revision = self.index.revision(raw)
        obj = prepare(raw, self.resource.kind, self.resource.api_version)
        key = object_key(obj)
        if event_type == "DELETED":
            self.store.pop(key, None)
        else:
            self.store[key] = (resource_version(raw), obj)
        record = K8sObjectEvent(type=event_type, ts=utcnow(), object=obj, revision=revision)
        self.sink.publish(key, record, self._resync.set)
        self.stats.published[self.resource.name] += 1

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        backoff = self.timing.backoff_initial_s
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                if self.resource_version is None or self._resync.is_set():
                    self.relist()
                handled = self.watch_once()
                if handled or time.monotonic() - started >= 1:
                    backoff = self.timing.backoff_initial_s
                    continue  # the server ended the watch (its timeout): resume at once
                # An empty watch ended at once: a server closing on us; do not spin.
            except Gone as exc:
                log.info("kubewatch: %s; relisting", exc)
                self.stats.gone[self.resource.name] += 1
                self.resource_version = None
                continue
            except Exception as exc:  # dropped connection, timeout, API error, torn JSON line
                if self.stop.is_set():
                    break
                self.stats.reconnects[self.resource.name] += 1
                hint = " (the watcher needs get/list/watch on it)" if getattr(exc, "status", None) == 403 else ""
                log.warning(
                    "kubewatch: %s: %s%s; resuming from resourceVersion %s in %.1fs",
                    self.name,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    hint,
                    self.resource_version,
                    backoff,
                )
            self.stop.wait(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self.timing.backoff_max_s)

    def interrupt(self) -> None:
        """Unblock a read in progress (used on stop)."""
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # already closed
                response.shutdown()


# ---------------------------------------------------------------------- configuration


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and IN_CLUSTER_TOKEN.exists()


def kubeconfig_path(kubeconfig: Path | str | None = None) -> Path | None:
    """The kubeconfig the watcher would read: the given one, else $KUBECONFIG's first, else ~/.kube/config."""
    if kubeconfig:
        return Path(kubeconfig)
    env = os.environ.get("KUBECONFIG")
    candidate = Path(env.split(os.pathsep)[0]) if env else Path.home() / ".kube" / "config"
    return candidate if candidate.is_file() else None


def cluster_config_available(kubeconfig: Path | str | None = None) -> bool:
    """Whether `runward up` should start the watcher: in a cluster, or with a kubeconfig."""
    return in_cluster() or kubeconfig_path(kubeconfig) is not None


def load_api_client(kubeconfig: Path | str | None = None, pool_size: int = 32) -> k8s_client.ApiClient:
    """An API client from the given kubeconfig, else the in-cluster ServiceAccount, else the default
    kubeconfig. Its connection pool holds every long-lived watch at once."""
    configuration = k8s_client.Configuration()
    if kubeconfig is None and in_cluster():
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        path = kubeconfig_path(kubeconfig)
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"no kubeconfig at {kubeconfig or '$KUBECONFIG or ~/.kube/config'} and not in a cluster; "
                "pass --kubeconfig PATH or run the watcher in the cluster with its ServiceAccount"
            )
        k8s_config.load_kube_config(config_file=str(path), client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return k8s_client.ApiClient(configuration)


# ---------------------------------------------------------------------- entry point


def run_watcher(
    settings: Settings,
    kubeconfig: Path | str | None = None,
    namespaces: Sequence[str] = (),
    resources: Iterable[Resource] = RESOURCES,
    stop: threading.Event | None = None,
    timing: Timing | None = None,
    api_client: k8s_client.ApiClient | None = None,
    sink: Sink | None = None,
) -> WatchStats:
    """Watch the cluster and publish to runward.raw.k8s until `stop` is set; return the counters.

    `namespaces` limits namespaced resources (ClusterRoles and ClusterRoleBindings are always watched)."""
    stop = stop or threading.Event()
    timing = timing or Timing()
    api_client = api_client or load_api_client(kubeconfig)
    sink = sink or KafkaSink(settings.kafka)
    stats, index = WatchStats(), RevisionIndex()
    watches = [
        ResourceWatch(resource, api_client, namespace, sink, index, stop, timing, stats)
        for resource in sorted(resources, key=RESOURCES.index)  # the table's order, whatever the caller's
        for namespace in (namespaces if resource.namespaced and namespaces else [None])
    ]
    # The first lists run one after another, in the table's order, so revisions can be named from the start.
    for watch in watches:
        try:
            watch.relist()
        except Exception as exc:  # its thread keeps trying, with backoff
            log.warning("kubewatch: first list of %s failed: %s", watch.name, exc)
    threads = [threading.Thread(target=w.run, name=f"kubewatch-{w.name}", daemon=True) for w in watches]
    for thread in threads:
        thread.start()
    log.info("kubewatch: watching %s", ", ".join(w.name for w in watches))
    try:
        while not stop.wait(1.0):  # a timed wait lets the main thread run signal handlers
            pass
    finally:
        stop.set()
        for watch in watches:
            watch.interrupt()
        for thread in threads:
            thread.join(timeout=timing.connect_timeout_s)
        undelivered = sink.close()
        if undelivered:
            log.error("kubewatch: %d records were not delivered before exit", undelivered)
    return stats
