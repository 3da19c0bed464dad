"""Long fuzz run: >= 20k inputs per intake and over the contract decoders, reporting 5xx and crashes.

    PYTHONPATH=. python -m bench.fuzz.run [--examples 20000] [--targets falco,tetragon,...]

Starts the embedded broker, serves the real receiver app in process with a real publisher (as
tests/fuzz does), and drives it with the same hypothesis strategies. Unlike the CI suites it does
not stop at the first failure: it counts every status and every exception and prints a table,
with the first few offending inputs per target. Exit status 1 if any 5xx or crash was seen.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from edges.intake.publish import RawPublisher
from runward.control.broker import ensure_topics, free_port, start_broker
from runward.core.codec import RejectedRecord, decode, encode
from runward.core.topics import ALL_TOPICS
from tests.fuzz import strategies as s
from tests.fuzz.harness import poster, receiver

INTAKE_TARGETS: dict[str, st.SearchStrategy[bytes]] = {
    "falco": s.bodies(s.falco_alerts),
    "tetragon": s.bodies(s.tetragon_events),
    "audit": s.bodies(s.audit_documents),
    "otlp-json": s.bodies(s.otlp_documents),
    "otlp-protobuf": s.otlp_protobuf_bodies,
}
_topic_payloads = st.one_of(*(st.tuples(st.just(topic), s.payloads_for(topic)) for topic in ALL_TOPICS))


@dataclass
class Tally:
    examples: int = 0
    statuses: collections.Counter[int | str] = field(default_factory=collections.Counter)
    failures: int = 0
    samples: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, what: str) -> None:
        self.failures += 1
        if len(self.samples) < 3:
            self.samples.append(what[:300])


def _run(examples: int, strategy: st.SearchStrategy[Any], probe: Callable[[Any, Tally], None]) -> Tally:
    tally = Tally()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def drive(value: Any) -> None:
        tally.examples += 1
        probe(value, tally)

    began = time.monotonic()
    drive()
    tally.seconds = time.monotonic() - began
    return tally


def intake(target: str, post: Callable[[bytes], int], examples: int) -> Tally:
    def probe(body: bytes, tally: Tally) -> None:
        try:
            status = post(body)
        except Exception as exc:  # noqa: BLE001 - a crash is what we count
            tally.statuses["crash"] += 1
            tally.fail(f"{type(exc).__name__}: {exc} for {body!r}")
            return
        tally.statuses[status] += 1
        if status >= 500:
            tally.fail(f"{status} for {body!r}")

    return _run(examples, INTAKE_TARGETS[target], probe)


def decoders(examples: int) -> Tally:
    def probe(value: Any, tally: Tally) -> None:
        topic, payload = value
        try:
            encode(decode(topic, payload))
            tally.statuses["accepted"] += 1
        except RejectedRecord:
            tally.statuses["rejected"] += 1
        except Exception as exc:  # noqa: BLE001
            tally.statuses["crash"] += 1
            tally.fail(f"{topic.name}: {type(exc).__name__}: {exc} for {payload!r}")

    return _run(examples, _topic_payloads, probe)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="inputs per target (default 20000)")
    parser.add_argument("--targets", default=",".join([*INTAKE_TARGETS, "decoders"]))
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_broker(port, Path(tmp) / "broker.log")
        bootstrap = f"127.0.0.1:{port}"
        results: dict[str, Tally] = {}
        try:
            ensure_topics(bootstrap, partitions=4)
            publisher = RawPublisher(bootstrap, "bench-fuzz")
            with receiver(publisher) as client:
                for target in targets:
                    if target == "decoders":
                        results[target] = decoders(args.examples)
                    else:
                        results[target] = intake(target, poster(client, target), args.examples)
                    _print_row(target, results[target])
            publisher.close(timeout_s=10)
        finally:
            broker.terminate()
            broker.wait(timeout=10)
    bad = {t: r for t, r in results.items() if r.failures}
    for target, tally in bad.items():
        for sample in tally.samples:
            print(f"  {target}: {sample}")
    print(f"total inputs {sum(r.examples for r in results.values())}, targets with 5xx/crashes: {len(bad)}")
    return 1 if bad else 0


def _print_row(target: str, tally: Tally) -> None:
    statuses = ", ".join(f"{k}:{v}" for k, v in sorted(tally.statuses.items(), key=lambda kv: str(kv[0])))
    print(
        f"{target:<14} inputs {tally.examples:>6}  5xx/crashes {tally.failures:>4}  "
        f"{tally.seconds:6.1f} s  [{statuses}]",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
