"""The watcher with the real `kubernetes` client against a replaying API server, publishing to the
real broker: resume after a dropped connection, bookmarks, relist after 410 Gone."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from edges.kubewatch.resources import BY_NAME
from edges.kubewatch.sink import KafkaSink
from edges.kubewatch.watcher import Timing, WatchStats, run_watcher
from runward.core.config import Settings
from runward.core.contracts import K8sObjectEvent, SourceRef
from runward.core.topics import RAW_K8S
from services.ingest import domain
from tests.kafka_reading import read_messages
from tests.kubewatch.apiserver_replay import ReplayApiServer, load

SENSOR_FIXTURES = Path(__file__).parent.parent / "sensor" / "fixtures" / "k8s"
# Short server-side watch timeouts and backoffs, so a test sees several watch rounds in seconds.
FAST = Timing(
    watch_timeout_s=1.0, read_grace_s=3.0, connect_timeout_s=3.0, backoff_initial_s=0.05, backoff_max_s=0.3, page_size=2
)


def in_namespace(objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    out = []
    for obj in copy.deepcopy(objects):
        if "namespace" in obj["metadata"]:
            obj["metadata"]["namespace"] = namespace
        for subject in obj.get("subjects") or []:
            subject["namespace"] = namespace
        out.append(obj)
    return out


def seeded(namespace: str) -> ReplayApiServer:
    """The recorded cluster (sensor Pod/ReplicaSet recordings + Deployments, ServiceAccounts, RBAC)
    in a namespace of this test's own, so records on the shared topic are told apart."""
    server = ReplayApiServer()
    pods = json.loads((SENSOR_FIXTURES / "pods.json").read_text())["items"]
    replicasets = json.loads((SENSOR_FIXTURES / "replicasets.json").read_text())
    server.seed("replicasets", in_namespace(replicasets, namespace))
    server.seed("pods", in_namespace(pods, namespace))
    server.seed("deployments", in_namespace(load("deployments.json"), namespace))
    server.seed("serviceaccounts", in_namespace(load("serviceaccounts.json"), namespace))
    rbac = load("rbac.json")
    for resource in ("roles", "rolebindings"):
        server.seed(resource, in_namespace(rbac[resource], namespace))
    # Cluster-scoped objects get this test's suffix, for the same reason.
    for resource in ("clusterroles", "clusterrolebindings"):
        objects = copy.deepcopy(rbac[resource])
        for obj in objects:
            obj["metadata"]["name"] += f"-{namespace}"
        server.seed(resource, objects)
    return server


@contextmanager
def watching(server: ReplayApiServer, bootstrap: str, tmp_path: Path, namespace: str) -> Iterator[WatchStats]:
    stop = threading.Event()
    stats: list[WatchStats] = []
    kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
    thread = threading.Thread(
        target=lambda: stats.append(
            run_watcher(Settings(kafka=bootstrap), kubeconfig, [namespace], stop=stop, timing=FAST)
        ),
        daemon=True,
    )
    thread.start()
    result = WatchStats()
    try:
        yield result
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "run_watcher did not return after stop"
        # Hand the counters to the test once the watcher has flushed and returned.
        for name in vars(result):
            getattr(result, name).update(getattr(stats[0], name))


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def published(
    bootstrap: str, namespace: str, want: int = 10_000, timeout: float = 4.0
) -> list[tuple[str, K8sObjectEvent]]:
    """(key, record) of this test's records on runward.raw.k8s, in offset order per key."""

    def ours(message: Any) -> bool:
        value = json.loads(message.value)
        meta = (value.get("object") or {}).get("metadata") or {}
        return value.get("source") == "k8s_object" and (
            meta.get("namespace") == namespace or str(meta.get("name", "")).endswith(namespace)
        )

    messages = read_messages(bootstrap, RAW_K8S.name, want, ours, timeout=timeout)
    return [(m.key or "", m.record) for m in messages]


def of(records: list[tuple[str, K8sObjectEvent]], key: str, kind: str) -> list[K8sObjectEvent]:
    return [r for k, r in records if k == key and r.object["kind"] == kind]


@pytest.fixture
def namespace() -> str:
    return f"kw-{uuid.uuid4().hex[:8]}"


def test_list_then_resume_after_a_dropped_connection(kafka_bootstrap: str, tmp_path: Path, namespace: str) -> None:
    server = seeded(namespace)
    deployment = next(
        d for d in server.collections["deployments"].objects.values() if d["metadata"]["name"] == "researcher"
    )
    server.fault("deployments", "drop_after:1")  # the first watch: one event whole, the next torn, connection reset
    with server.running(), watching(server, kafka_bootstrap, tmp_path, namespace) as stats:
        wait_for(lambda: server.calls("deployments", watch=True), "the first deployments watch")
        scaled = copy.deepcopy(deployment)
        scaled["spec"]["replicas"] = 3
        scaled["metadata"]["generation"] += 1
        v_scaled = server.change("deployments", "MODIFIED", scaled)
        relabelled = copy.deepcopy(scaled)
        relabelled["metadata"]["labels"]["team"] = "research"
        relabelled["metadata"]["annotations"]["runward.io/owner"] = "ml-platform"
        v_relabelled = server.change("deployments", "MODIFIED", relabelled)
        wait_for(
            lambda: any(r.query.get("resourceVersion") == str(v_scaled) for r in server.calls("deployments", True)),
            "a watch resuming from the last delivered resourceVersion",
        )
        time.sleep(1.0)  # let the resumed watch deliver the torn event whole
    watches = server.calls("deployments", watch=True)
    first_list = server.lists("deployments")[0]
    assert watches[0].query["resourceVersion"] != str(v_scaled)  # the first watch started from the list
    resumed = next(r for r in watches if r.query.get("resourceVersion") == str(v_scaled))
    assert resumed.query["allowWatchBookmarks"] == "true" and resumed.query["watch"] == "true"
    assert int(first_list.query["limit"]) == FAST.page_size
    assert len(server.lists("deployments")) == 1, "a dropped connection must not relist"
    assert stats.reconnects["deployments"] >= 1 and stats.gone["deployments"] == 0

    records = published(kafka_bootstrap, namespace)
    researcher = of(records, f"{namespace}/researcher", "Deployment")
    versions = [(r.type, r.object["metadata"]["resourceVersion"]) for r in researcher]
    assert versions == [
        ("ADDED", deployment["metadata"]["resourceVersion"]),
        ("MODIFIED", str(v_scaled)),
        ("MODIFIED", str(v_relabelled)),
    ], "each version once, in order, the torn one delivered after the resume"
    # Scaling and a label/annotation change are not revisions.
    revisions = {r.revision.template_hash for r in researcher if r.revision}
    assert len(revisions) == 1 and all(r.revision for r in researcher)
    assert researcher[0].revision is not None and researcher[0].revision.pod_template_hash == "6f7b9c8d4"
    assert researcher[0].revision.image_digests == {"agent": ["sha256:" + "ab" * 32]}

    # Everything listed (pods over three pages), each object once, every kind the watcher follows.
    pods = [r for k, r in records if r.object["kind"] == "Pod"]
    assert sorted(r.object["metadata"]["name"] for r in pods) == sorted(
        p["metadata"]["name"] for p in json.loads((SENSOR_FIXTURES / "pods.json").read_text())["items"]
    )
    kinds = {r.object["kind"] for _, r in records}
    assert kinds == {
        "Deployment",
        "ReplicaSet",
        "Pod",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    }
    assert all(r.object["apiVersion"] and "managedFields" not in r.object["metadata"] for _, r in records)
    assert of(records, f"agents-secret-reader-{namespace}", "ClusterRole")  # cluster-scoped key: the name

    # Ingest, as it is, learns the agent from these records: its ServiceAccount and autonomy tier.
    registry: dict[str, Any] = {}
    source = SourceRef(topic=RAW_K8S.name, partition=0, offset=0)
    for _, record in records:
        if record.object["kind"] in ("ReplicaSet", "Pod", "Deployment"):
            assert record.ts is not None
            domain.apply_k8s_object(registry, record, record.ts, source)
    assert registry[f"dep:{namespace}/researcher"]["autonomy"] == "low"
    assert registry[f"dep:{namespace}/researcher"]["service_account"] == "researcher"
    identities = {v["pod"]: v for k, v in registry.items() if k.startswith("pod:")}
    assert identities["researcher-6f7b9c8d4-k2x9z"]["deployment"] == f"{namespace}/researcher"
    assert identities["researcher-6f7b9c8d4-k2x9z"]["service_account"] == "researcher"
    assert identities["retriever-5c4b3a2d1-p7q8r"]["deployment"] == f"{namespace}/retriever"


def test_bookmark_moves_the_resume_point(kafka_bootstrap: str, tmp_path: Path, namespace: str) -> None:
    server = seeded(namespace)
    server.fault("serviceaccounts", "bookmark")
    with server.running(), watching(server, kafka_bootstrap, tmp_path, namespace) as stats:
        wait_for(lambda: len(server.calls("serviceaccounts", watch=True)) >= 3, "watches after the bookmark")
    watches = server.calls("serviceaccounts", watch=True)
    list_version = int(watches[0].query["resourceVersion"])
    assert server.bookmarks[0] > list_version
    assert watches[1].query["resourceVersion"] == str(server.bookmarks[0])
    # From the list's version the server would have answered 410: the bookmark kept the watch alive.
    assert len(server.lists("serviceaccounts")) == 1, "no relist"
    assert stats.bookmarks["serviceaccounts"] == 1 and stats.gone["serviceaccounts"] == 0
    records = published(kafka_bootstrap, namespace)
    accounts = [r for _, r in records if r.object["kind"] == "ServiceAccount"]
    assert sorted((r.type, r.object["metadata"]["name"]) for r in accounts) == [
        ("ADDED", "default"),
        ("ADDED", "planner"),
        ("ADDED", "researcher"),
    ], "a bookmark publishes nothing"


def test_relist_after_410_publishes_only_the_difference(kafka_bootstrap: str, tmp_path: Path, namespace: str) -> None:
    server = seeded(namespace)
    server.collections["serviceaccounts"].gone_as_http = True  # 410 as an HTTP status; deployments: an ERROR event
    deployments = {d["metadata"]["name"]: d for d in server.collections["deployments"].objects.values()}
    with server.running(), watching(server, kafka_bootstrap, tmp_path, namespace) as stats:
        wait_for(lambda: server.calls("deployments", watch=True), "the first deployments watch")
        wait_for(lambda: server.calls("serviceaccounts", watch=True), "the first serviceaccounts watch")
        # Changes while the watcher was not looking, their events compacted away.
        rolled = copy.deepcopy(deployments["researcher"])
        rolled["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/researcher-agent:1.5.0"
        rolled["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "4"
        v_rolled = server.change("deployments", "MODIFIED", rolled, silent=True)
        planner_sa = server.collections["serviceaccounts"].objects[f"{namespace}/planner"]
        server.change("serviceaccounts", "DELETED", planner_sa, silent=True)
        wait_for(
            lambda: len(server.lists("deployments")) >= 2 and len(server.lists("serviceaccounts")) >= 2,
            "relists after 410",
        )
        wait_for(
            lambda: server.calls("deployments", watch=True)[-1].query.get("resourceVersion") not in (None, ""),
            "a watch after the relist",
        )
        time.sleep(0.5)
    assert stats.gone["deployments"] >= 1 and stats.gone["serviceaccounts"] >= 1
    # The relist is a fresh consistent list, then the watch resumes from its version.
    relist = server.lists("deployments")[1]
    assert "resourceVersion" not in relist.query

    records = published(kafka_bootstrap, namespace)
    researcher = of(records, f"{namespace}/researcher", "Deployment")
    assert [(r.type, r.object["metadata"]["resourceVersion"]) for r in researcher] == [
        ("ADDED", deployments["researcher"]["metadata"]["resourceVersion"]),
        ("MODIFIED", str(v_rolled)),
    ]
    assert researcher[0].revision and researcher[1].revision
    assert researcher[0].revision.template_hash != researcher[1].revision.template_hash, "a new image is a revision"
    assert [r.type for r in of(records, f"{namespace}/planner", "Deployment")] == ["ADDED"], "unchanged: not again"
    assert [r.type for r in of(records, f"{namespace}/planner", "ServiceAccount")] == ["ADDED", "DELETED"]
    deleted = of(records, f"{namespace}/planner", "ServiceAccount")[1]
    assert deleted.object["metadata"]["uid"] == planner_sa["metadata"]["uid"]  # its last known state
    assert [r.type for r in of(records, f"{namespace}/researcher", "ServiceAccount")] == ["ADDED"]


def test_reconnects_with_growing_backoff_while_the_server_is_away(
    kafka_bootstrap: str, tmp_path: Path, namespace: str
) -> None:
    server = seeded(namespace)
    # The client's own urllib3 retries take each reset list 4 times in a row; the watcher's backoff
    # spaces those groups: 5 groups fail (the first list and 4 relists), the 6th gets through.
    server.collections["deployments"].resets = 20
    with server.running(), watching(server, kafka_bootstrap, tmp_path, namespace) as stats:
        wait_for(lambda: server.calls("deployments", watch=True), "a deployments watch once the server is back")
    calls = server.calls("deployments")
    assert [c.reset for c in calls[:21]] == [True] * 20 + [False]
    assert not calls[20].watch and calls[-1].watch  # back: a list, then the watch
    starts = [calls[i].at for i in range(4, 24, 4)]
    waits = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    # Exponential with jitter (0.5-1.0 of 0.05, 0.1, 0.2, 0.3 s). A loaded machine only makes waits
    # longer, so each is checked against its lower bound: the backoff really grows between groups.
    nominal = [0.05, 0.1, 0.2, 0.3]
    assert all(w >= 0.5 * n * 0.9 for w, n in zip(waits, nominal, strict=True)), waits
    assert stats.reconnects["deployments"] == 4
    records = published(kafka_bootstrap, namespace)
    assert sorted((r.type, r.object["metadata"]["name"]) for _, r in records if r.object["kind"] == "Deployment") == [
        ("ADDED", "planner"),
        ("ADDED", "researcher"),
    ]


def test_undelivered_records_make_the_watch_relist_from_scratch(tmp_path: Path, namespace: str) -> None:
    """The resume point moves on when a record is handed to the producer; one the broker never
    acknowledged would be lost, so its watch lists again and publishes everything again."""
    server = seeded(namespace)
    nothing_there = socket.socket()
    nothing_there.bind(("127.0.0.1", 0))  # a port nobody listens on: every delivery times out
    sink = KafkaSink(f"127.0.0.1:{nothing_there.getsockname()[1]}", message_timeout_ms=300)
    stop = threading.Event()
    with server.running():
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        thread = threading.Thread(
            target=run_watcher,
            args=(Settings(), kubeconfig, [namespace], [BY_NAME["deployments"]], stop, FAST),
            kwargs={"sink": sink},
            daemon=True,
        )
        thread.start()
        try:
            wait_for(lambda: len(server.lists("deployments")) >= 3, "relists after failed deliveries")
        finally:
            stop.set()
            thread.join(timeout=30)
            nothing_there.close()
    assert sink.failed >= 4  # both Deployments, at least twice


def test_a_watch_error_other_than_410_resumes_without_relisting(
    kafka_bootstrap: str, tmp_path: Path, namespace: str
) -> None:
    server = seeded(namespace)
    server.fault("roles", "internal_error")
    with server.running(), watching(server, kafka_bootstrap, tmp_path, namespace) as stats:
        wait_for(lambda: len(server.calls("roles", watch=True)) >= 2, "a watch after the error")
    first, second = server.calls("roles", watch=True)[:2]
    assert second.query["resourceVersion"] == first.query["resourceVersion"]
    assert len(server.lists("roles")) == 1 and stats.gone["roles"] == 0 and stats.reconnects["roles"] == 1
