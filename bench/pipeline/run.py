"""Pipeline benchmark: every stage's throughput per worker and the raw-event -> attack-story latency.

Runs the real pipeline on the embedded broker (Tansu) with the real stage processes
(`python -m services.<stage>.app`, one worker each) and prints, in one run so the figures are
ratios of the same machine under the same load:

- transport: a plain confluent-kafka consumer reading a flood from the same broker (the limit
  no stage can beat);
- flood, per stage: the stage alone draining a pre-filled input topic of a realistic mix
  (opens, connects, DNS, execs, LLM and tool calls, Kubernetes objects over many Deployments),
  events/s per worker and its ratio to the transport;
- latency: every stage running together under a steady background rate, probes (an exec no
  agent has done) timed from the raw record to its enriched record, its signal and its story
  (Kafka record timestamps, one clock), p50/p99.

    .venv/bin/python bench/pipeline/run.py            # a few minutes
    .venv/bin/python bench/pipeline/run.py --short    # the CI smoke run (seconds, no targets)
    .venv/bin/python bench/pipeline/run.py --json out.json

Why each stage is measured alone: together they share two CPUs, so one stage's rate would be
whatever the others leave it. Stages are drained from topics filled up front (no producer in the
loop); the end of a drain is read from the stage's own heartbeat (`last_record_at` in the store),
its start from its first output record's timestamp.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from runward.control.broker import ensure_topics, free_port, start_broker  # noqa: E402
from runward.core.kafka import producer_config  # noqa: E402
from runward.core.store import Store  # noqa: E402
from runward.core.store.migrate import upgrade  # noqa: E402
from runward.core.topics import (  # noqa: E402
    APD,
    ATTACK_STORIES,
    DECLARED,
    ENRICHED,
    PROMOTIONS,
    RAW_K8S,
    RAW_LLM,
    RAW_SENSOR,
    SIGNALS,
)

STAGE_INPUTS = {
    "ingest": (RAW_SENSOR.name, RAW_LLM.name, RAW_K8S.name),
    "profiler": (ENRICHED.name,),
    "bom": (ENRICHED.name, DECLARED.name),
    "correlator": (SIGNALS.name,),
    "enforcer": (APD.name, PROMOTIONS.name, ATTACK_STORIES.name),
}
STAGE_OUTPUT = {
    "ingest": ENRICHED.name,
    "profiler": APD.name,
    "bom": "runward.aibom",
    "correlator": ATTACK_STORIES.name,
    "enforcer": "runward.policies",
}
NS = "bench"
QUIET = {"log_level": 3}  # librdkafka: errors only, not every request timeout of a group leave


# --- the workload -----------------------------------------------------------------------------


def _who(d: int, replica: int = 0) -> dict[str, Any]:
    name = f"agent-{d:03d}"
    return {
        "namespace": NS,
        "deployment": f"{NS}/{name}",
        "pod": f"{name}-7d9f{d:03d}-{replica}",
        "service_account": f"{name}-sa",
        "node": "bench-node",
    }


def _sensor(d: int, ts: datetime, detail: dict[str, Any], rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    value = {
        "event_id": uuid.uuid4().hex,
        "ts": ts.isoformat(),
        "pid": rng.randint(100, 60000),
        "comm": "python3",
        "attribution": _who(d, rng.randint(0, 1)),
        "detail": detail,
    }
    return RAW_SENSOR.name, f"{NS}/agent-{d:03d}", value


def _llm(d: int, ts: datetime, rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    value: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "ts": ts.isoformat(),
        "attribution": _who(d),
    }
    if rng.random() < 0.5:
        value |= {
            "operation": "chat",
            "provider": "openai",
            "request_model": "gpt-4o",
            "input_messages": [f"summarise ticket {rng.randint(1, 10_000)} for the customer"],
            "output_messages": ["Here is the summary."],
            "input_tokens": rng.randint(50, 2000),
            "output_tokens": rng.randint(20, 400),
        }
    else:
        value |= {
            "operation": "execute_tool",
            "tool_name": rng.choice(["lookup_order", "search_kb", "create_ticket"]),
            "mcp_server": "crm",
            "tool_arguments": {"id": str(rng.randint(1, 10_000))},
        }
    return RAW_LLM.name, f"{NS}/agent-{d:03d}", value


def _deployment_object(d: int, ts: datetime) -> tuple[str, str, dict[str, Any]]:
    name = f"agent-{d:03d}"
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "generation": 1,
            "annotations": {"runward.io/autonomy": "low"},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"serviceAccountName": f"{name}-sa", "containers": [{"name": "agent", "image": "agent:1"}]},
            },
        },
    }
    value = {"source": "k8s_object", "type": "ADDED", "ts": ts.isoformat(), "object": obj}
    return RAW_K8S.name, f"{NS}/{name}", value


def raw_mix(count: int, deployments: int, seed: int, start: datetime) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """A node's worth of agents: mostly file opens, then network, DNS, LLM/tool calls and execs."""
    rng = random.Random(seed)
    for d in range(deployments):
        yield _deployment_object(d, start)
    for i in range(count - deployments):
        d = rng.randrange(deployments)
        ts = start + timedelta(milliseconds=i)
        roll = rng.random()
        if roll < 0.45:
            path = rng.choice(
                [
                    f"/usr/lib/python3.11/site-packages/pkg{rng.randint(0, 40)}/__init__.py",
                    f"/tmp/work/{rng.randint(0, 10_000)}.json",
                    "/etc/resolv.conf",
                    "/var/run/secrets/kubernetes.io/serviceaccount/token",
                ]
            )
            yield _sensor(d, ts, {"kind": "file_open", "path": path, "flags": 0}, rng)
        elif roll < 0.65:
            host = rng.choice(["10.0.0.12", "10.0.3.7", "172.20.1.5"])
            detail = {"kind": "connect", "family": "ipv4", "address": host, "port": rng.choice([443, 5432, 6379])}
            yield _sensor(d, ts, detail, rng)
        elif roll < 0.75:
            yield _sensor(d, ts, {"kind": "dns", "name": rng.choice(["api.openai.com.", "crm.internal."])}, rng)
        elif roll < 0.80:
            binary = rng.choice(["/usr/bin/python3", "/usr/bin/git"])
            yield _sensor(d, ts, {"kind": "exec", "binary": binary, "argv": [binary, "-c", "x"]}, rng)
        else:
            yield _llm(d, ts, rng)


def signal_mix(count: int, deployments: int, seed: int, start: datetime) -> Iterator[tuple[str, str, dict[str, Any]]]:
    rng = random.Random(seed)
    for i in range(count):
        d = rng.randrange(deployments)
        dep = f"{NS}/agent-{d:03d}"
        surface = rng.choice(["process", "network", "tool", "input"])
        value = {
            "signal_id": uuid.uuid4().hex,
            "deployment": dep,
            "ts": (start + timedelta(seconds=i)).isoformat(),
            "surface": surface,
            "title": f"new {surface} behaviour after the observation window",
            "behaviour": f"exec:/tmp/bench-{i}",
            "techniques": [{"uid": "T1059", "name": "Command and Scripting Interpreter"}],
            "severity": 3,
            "source_event": uuid.uuid4().hex,
        }
        yield SIGNALS.name, dep, value


def apd_mix(count: int, deployments: int, start: datetime) -> Iterator[tuple[str, str, dict[str, Any]]]:
    revision: dict[int, int] = {}
    for i in range(count):
        d = i % deployments
        revision[d] = revision.get(d, 0) + 1
        rev = revision[d]
        dep = f"{NS}/agent-{d:03d}"
        behaviours = {
            "egress": [f"egress:10.0.{n % 250}.{n % 200 + 1}:443/tcp" for n in range(1 + rev % 12)],
            "syscalls": sorted(f"syscall:{s}" for s in ["read", "write", "openat", "close", "connect"][: 1 + rev % 5]),
            "processes": ["exec:/usr/bin/python3"],
        }
        value = {
            "deployment": dep,
            "revision": rev,
            "created_at": (start + timedelta(seconds=i)).isoformat(),
            "autonomy": "low",
            "window_started_at": start.isoformat(),
            "window_ends_at": (start + timedelta(days=3)).isoformat(),
            "window_status": "learning",
            "behaviours": behaviours,
        }
        yield APD.name, dep, value


# --- Kafka helpers ----------------------------------------------------------------------------


def produce(bootstrap: str, records: Iterator[tuple[str, str, dict[str, Any]]]) -> int:
    producer = Producer(producer_config(bootstrap, "runward-bench", {**QUIET, "linger.ms": 20}))
    sent = 0
    for topic, key, value in records:
        while True:
            try:
                producer.produce(topic, key=key.encode(), value=json.dumps(value).encode())
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        if sent % 5000 == 0:
            producer.poll(0)
    if producer.flush(60) != 0:
        raise RuntimeError("the broker did not take every benchmark record within 60 s")
    return sent


def topic_count(bootstrap: str, topics: tuple[str, ...]) -> int:
    """Records on the topics now, counted by reading them (the embedded broker's high watermark
    is not exact for partitions that hold whole batches)."""
    return sum(1 for _ in read_all(bootstrap, list(topics), idle_s=1.5))


def _reader(bootstrap: str, topics: list[str]) -> Consumer:
    """A consumer assigned every partition from the beginning: no group join to wait for."""
    consumer = Consumer(
        {**QUIET, "bootstrap.servers": bootstrap, "group.id": "runward-bench-reader", "enable.auto.commit": False}
    )
    parts = []
    for topic in topics:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
    consumer.assign(parts)
    return consumer


def read_all(bootstrap: str, topics: list[str], idle_s: float = 2.0) -> Iterator[Any]:
    """Every record now on the topics (stops after idle_s without a new one)."""
    consumer = _reader(bootstrap, topics)
    try:
        last = time.monotonic()
        while time.monotonic() - last < idle_s:
            for m in consumer.consume(10_000, 0.2):
                if m.error() is None:
                    last = time.monotonic()
                    yield m
    finally:
        consumer.close()


def transport_rate(bootstrap: str, count: int) -> float:
    """Records/s a plain confluent-kafka consumer reads from this broker: the stages' ceiling."""
    topic = f"bench.transport.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(topic, 4, 1)]).values():
        fut.result(30)
    produce(bootstrap, ((topic, k, v) for _, k, v in raw_mix(count, 20, 7, datetime.now(timezone.utc))))
    consumer = _reader(bootstrap, [topic])
    first_batch, began, ended = 0, 0.0, 0.0
    seen = 0
    deadline = time.monotonic() + 120
    while seen < count and time.monotonic() < deadline:
        msgs = [m for m in consumer.consume(500, 0.5) if m.error() is None]
        if not msgs:
            continue
        if not seen:  # time from the first batch on: the fetch pipeline is warm
            first_batch, began = len(msgs), time.perf_counter()
        seen += len(msgs)
        ended = time.perf_counter()
    consumer.close()
    took = ended - began
    seen -= first_batch
    return seen / took if took > 0 else float("nan")


# --- stage processes --------------------------------------------------------------------------


@dataclass
class Pipeline:
    bootstrap: str
    home: Path
    window_s: int
    db: str | None = None  # a SQLAlchemy URL; None: the embedded SQLite file in `home`
    procs: dict[str, list[subprocess.Popen[bytes]]] = field(default_factory=dict)

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.home / 'runward.db'}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RUNWARD_KAFKA=self.bootstrap,
            RUNWARD_HOME=str(self.home),
            RUNWARD_DB=self.db_url,
            RUNWARD_OBSERVATION_WINDOW_S=str(self.window_s),
            PYTHONPATH=str(ROOT),
        )
        return env

    def start(self, stage: str, workers: int = 1) -> None:
        log = (self.home / f"{stage}.log").open("ab")
        self.procs[stage] = [
            subprocess.Popen(
                [sys.executable, "-m", f"services.{stage}.app"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                cwd=self.home,
            )
            for _ in range(workers)
        ]

    def stop(self, stage: str) -> None:
        for proc in self.procs.pop(stage, []):
            proc.terminate()
        for proc in self.procs.get(stage, []):
            proc.wait(20)

    def stop_all(self) -> None:
        for stage in list(self.procs):
            for proc in self.procs.pop(stage):
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _processed(store: Store, stage: str) -> tuple[int, datetime | None]:
    for row in store.stage_health():
        if row["stage"] == stage:
            return int(row["processed"]), row["last_record_at"]
    return 0, None


def drain(pipe: Pipeline, stage: str, expected: int, workers: int, timeout_s: float) -> dict[str, Any]:
    """Start the stage on its filled input; events/s from its first output to its last record."""
    store = Store(pipe.db_url)
    before, _ = _processed(store, stage)
    pipe.start(stage, workers)
    deadline = time.monotonic() + timeout_s
    done, last_at = before, None
    while time.monotonic() < deadline:
        done, last_at = _processed(store, stage)
        if done - before >= expected:
            break
        time.sleep(0.25)
    cpu = sum(_cpu_seconds(proc.pid) for proc in pipe.procs.get(stage, []))
    peak_rss = max((_peak_rss_mb(proc.pid) for proc in pipe.procs.get(stage, [])), default=0.0)
    pipe.stop(stage)
    handled = done - before
    first = _first_output_ts(pipe.bootstrap, STAGE_OUTPUT[stage])
    seconds = (last_at - first).total_seconds() if (last_at and first) else float("nan")
    rate = handled / seconds if seconds and seconds > 0 else float("nan")
    return {
        "workers": workers,
        "input_records": expected,
        "processed": handled,
        "seconds": round(seconds, 3),
        "events_per_s_per_worker": round(rate / workers, 1),
        "complete": handled >= expected,
        # What a loaded machine moves least: the stage processes' CPU (start-up, ~2 s, included).
        "cpu_seconds": round(cpu, 2),
        "cpu_us_per_event": round(cpu / handled * 1e6, 1) if handled else None,
        # State is per Deployment, not per event: a bigger flood must not raise this much.
        "peak_rss_mb": round(peak_rss, 1),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    """A running process's peak resident memory (Linux /proc VmHWM) in MiB, 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _first_output_ts(bootstrap: str, topic: str) -> datetime | None:
    first: float | None = None
    for m in read_all(bootstrap, [topic], idle_s=1.5):
        _, ts_ms = m.timestamp()
        first = ts_ms if first is None else min(first, ts_ms)
    return datetime.fromtimestamp(first / 1000, timezone.utc) if first else None


# --- latency under background load --------------------------------------------------------------


def latency_run(pipe: Pipeline, deployments: int, rate: int, seconds: int, probes: int) -> dict[str, Any]:
    """All stages running; a background mix at `rate` events/s; probes timed to their story."""
    for stage in STAGE_INPUTS:
        pipe.start(stage)
    time.sleep(8)  # join their groups
    producer = Producer(producer_config(pipe.bootstrap, "runward-bench-latency", {**QUIET, "linger.ms": 5}))
    rng = random.Random(11)
    start = datetime.now(timezone.utc)
    # Prime every agent and let its observation window (pipe.window_s) pass.
    for topic, key, value in raw_mix(deployments * 20, deployments, 3, start):
        producer.produce(topic, key=key.encode(), value=json.dumps(value).encode())
    producer.flush(30)
    time.sleep(pipe.window_s + 2)
    background = raw_mix(10**9, deployments, 5, datetime.now(timezone.utc))
    sent_probes: dict[str, tuple[str, float]] = {}
    interval = 1.0 / rate if rate else 0
    probe_every = max(1, seconds // max(1, probes))
    began = time.monotonic()
    next_probe = began + 1
    count = 0
    while time.monotonic() - began < seconds:
        tick = time.monotonic()
        batch = max(1, int(rate * 0.01))
        for _ in range(batch):
            topic, key, value = next(background)
            value["ts"] = datetime.now(timezone.utc).isoformat()
            while True:
                try:
                    producer.produce(topic, key=key.encode(), value=json.dumps(value).encode())
                    break
                except BufferError:
                    producer.poll(0.01)
            count += 1
        if time.monotonic() >= next_probe and len(sent_probes) < probes:
            next_probe += probe_every
            d = rng.randrange(deployments)
            binary = f"/tmp/probe-{uuid.uuid4().hex[:8]}"
            topic, key, value = _sensor(
                d, datetime.now(timezone.utc), {"kind": "exec", "binary": binary, "argv": [binary]}, rng
            )
            producer.produce(topic, key=key.encode(), value=json.dumps(value).encode())
            producer.flush(5)
            sent_probes[value["event_id"]] = (binary, time.time())
        producer.poll(0)
        if interval:
            time.sleep(max(0.0, batch * interval - (time.monotonic() - tick)))
    producer.flush(30)
    time.sleep(10)  # let the last probes through
    out = _probe_latencies(pipe.bootstrap, sent_probes)
    out["background_events_per_s"] = round(count / seconds, 1)
    pipe.stop_all()
    return out


def _probe_latencies(bootstrap: str, probes: dict[str, tuple[str, float]]) -> dict[str, Any]:
    by_binary = {binary: (event_id, sent) for event_id, (binary, sent) in probes.items()}
    enriched: dict[str, float] = {}
    signals: dict[str, float] = {}
    stories: dict[str, float] = {}
    for m in read_all(bootstrap, [ENRICHED.name, SIGNALS.name, ATTACK_STORIES.name], idle_s=3):
        ts = m.timestamp()[1] / 1000
        value = json.loads(m.value())
        if m.topic() == ENRICHED.name:
            binary = (value.get("detail") or {}).get("binary")
            if binary in by_binary:
                enriched.setdefault(binary, ts)
        elif m.topic() == SIGNALS.name:
            binary = _probe_binary(value.get("behaviour"))
            if binary in by_binary:
                signals.setdefault(binary, ts)
        else:
            for sig in value.get("signals", []):
                binary = _probe_binary(sig.get("behaviour"))
                if binary in by_binary:
                    stories[binary] = min(stories.get(binary, ts), ts)

    def stats(ends: dict[str, float], starts: dict[str, float]) -> dict[str, float | int]:
        ms = sorted((ends[b] - starts[b]) * 1000 for b in ends if b in starts)
        if not ms:
            return {"n": 0}
        return {"n": len(ms), "p50": round(statistics.median(ms), 1), "p99": round(_quantile(ms, 0.99), 1)}

    sent = {b: s for b, (_, s) in by_binary.items()}
    return {
        "probes": len(probes),
        "stage_latency_ms": {
            "ingest": stats(enriched, sent),
            "profiler": stats(signals, enriched),
            "correlator": stats(stories, signals),
        },
        "story_latency_ms": stats(stories, sent),
    }


def _probe_binary(behaviour: Any) -> str | None:
    if isinstance(behaviour, str) and behaviour.startswith("exec:"):
        return behaviour.removeprefix("exec:")
    if isinstance(behaviour, dict):
        binary = behaviour.get("binary")
        return binary if isinstance(binary, str) else None
    return None


def _quantile(sorted_ms: list[float], q: float) -> float:
    if len(sorted_ms) == 1:
        return sorted_ms[0]
    pos = q * (len(sorted_ms) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (pos - lo)


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="flood size per stage")
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1, help="workers per stage in the flood")
    parser.add_argument("--background-rate", type=int, default=500, help="events/s during the latency run")
    parser.add_argument("--latency-seconds", type=int, default=40)
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--stages", default=",".join(STAGE_INPUTS), help="comma-separated stages to flood")
    parser.add_argument("--short", action="store_true", help="CI smoke run: small flood, short latency run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--db",
        default="sqlite",
        help="the stages' store: sqlite (a file per run, the default) or a PostgreSQL SQLAlchemy URL "
        "(a schema of its own is made for the run and dropped after), as a cluster runs them",
    )
    args = parser.parse_args(argv)
    if args.short:
        args.events, args.latency_seconds, args.probes, args.background_rate = 600, 8, 4, 100

    home = Path(tempfile.mkdtemp(prefix="runward-bench-"))
    port = free_port()
    broker = start_broker(port, home / "broker.log")
    bootstrap = f"127.0.0.1:{port}"
    schema = _bench_schema(args.db) if args.db != "sqlite" else None
    pipe = Pipeline(bootstrap, home, window_s=5, db=schema[1] if schema else None)
    try:
        ensure_topics(bootstrap, 4)
        upgrade(pipe.db_url)
        result = run(pipe, args)
    finally:
        pipe.stop_all()
        broker.terminate()
        broker.wait(10)
        if schema:
            _drop_bench_schema(args.db, schema[0])
    _print(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def _bench_schema(url: str) -> tuple[str, str]:
    """A schema of the run's own on the PostgreSQL server at `url`: (its name, the stages' URL)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    joiner = "&" if "?" in url else "?"
    return schema, f"{url}{joiner}options=-csearch_path%3D{schema}"


def _drop_bench_schema(url: str, schema: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def run(pipe: Pipeline, args: argparse.Namespace) -> dict[str, Any]:
    stages = [s for s in args.stages.split(",") if s]
    transport_records = max(args.events, 20_000)
    print(f"transport: reading {transport_records} records with a plain confluent-kafka consumer ...", flush=True)
    transport = transport_rate(pipe.bootstrap, transport_records)
    print(f"  transport: {transport:,.0f} records/s", flush=True)
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    fills: dict[str, Callable[[], int]] = {
        "ingest": lambda: produce(pipe.bootstrap, raw_mix(args.events, args.deployments, 1, start)),
        "correlator": lambda: produce(pipe.bootstrap, signal_mix(args.events, args.deployments, 2, start)),
        "enforcer": lambda: produce(pipe.bootstrap, apd_mix(args.events, args.deployments, start)),
    }
    results: dict[str, Any] = {}
    timeout = max(120.0, args.events / 100)
    for stage in ["ingest", "profiler", "bom", "correlator", "enforcer"]:
        if stage not in stages and not (stage == "ingest" and {"profiler", "bom"} & set(stages)):
            continue
        if stage in fills:
            fills[stage]()
        # Profiler and bom drain what ingest enriched; the enforcer also what the profiler and
        # correlator published before it.
        expected = topic_count(pipe.bootstrap, STAGE_INPUTS[stage])
        print(f"flood: {stage} draining {expected} records ...", flush=True)
        results[stage] = drain(pipe, stage, expected, args.workers, timeout)
        results[stage]["ratio_to_transport"] = round(results[stage]["events_per_s_per_worker"] / transport, 4)
        print(f"  {stage}: {json.dumps(results[stage])}", flush=True)  # a later failure keeps this figure
    if args.latency_seconds > 0:
        print(f"latency: every stage, {args.background_rate} events/s background, {args.probes} probes ...", flush=True)
        latency = latency_run(pipe, args.deployments, args.background_rate, args.latency_seconds, args.probes)
    else:  # --latency-seconds 0: the floods only
        latency = {"story_latency_ms": {"n": 0}, "probes": 0, "stage_latency_ms": {}, "background_events_per_s": 0}
    return {
        "stages": results,
        "transport_events_per_s": round(transport, 1),
        "story_latency_ms": latency.pop("story_latency_ms"),
        "latency_run": latency,
        "machine": {
            "cpus": os.cpu_count(),
            "events": args.events,
            "deployments": args.deployments,
            "store": "sqlite" if args.db == "sqlite" else "postgresql",
        },
    }


def _print(result: dict[str, Any]) -> None:
    print()
    print(f"transport (plain confluent-kafka consumer): {result['transport_events_per_s']:,.0f} events/s")
    header = f"{'stage':<11} {'events/s/worker':>16} {'x transport':>12} {'processed':>10} {'seconds':>8}"
    print(f"{header} {'CPU µs/event':>13} {'peak RSS MiB':>13}")
    for stage, r in result["stages"].items():
        print(
            f"{stage:<11} {r['events_per_s_per_worker']:>16,.1f} {r['ratio_to_transport']:>12.4f} "
            f"{r['processed']:>10} {r['seconds']:>8} {r['cpu_us_per_event'] or float('nan'):>13,.1f} "
            f"{r.get('peak_rss_mb', float('nan')):>13,.1f}"
        )
    lat = result["latency_run"]
    print(f"latency at {lat['background_events_per_s']} events/s background, {lat['probes']} probes:")
    for stage, s in lat["stage_latency_ms"].items():
        print(f"  {stage:<11} raw->output  p50 {s.get('p50', '-')} ms  p99 {s.get('p99', '-')} ms  (n={s['n']})")
    s = result["story_latency_ms"]
    print(f"  raw event -> attack story   p50 {s.get('p50', '-')} ms  p99 {s.get('p99', '-')} ms  (n={s['n']})")


if __name__ == "__main__":
    raise SystemExit(main())
