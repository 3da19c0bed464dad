"""`python -m edges.kubewatch`: watch a cluster and publish to runward.raw.k8s (`runward watch`)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from edges.kubewatch.resources import BY_NAME, RESOURCES
from edges.kubewatch.watcher import run_watcher
from runward.core.config import Settings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="runward watch",
        description="Watch Deployments, ReplicaSets, Pods, ServiceAccounts and RBAC objects; publish them "
        "to runward.raw.k8s. Uses --kubeconfig, else the in-cluster ServiceAccount, else $KUBECONFIG or "
        "~/.kube/config.",
    )
    p.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--kafka", help="Kafka bootstrap servers (default: RUNWARD_KAFKA or 127.0.0.1:9092)")
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeat for several); ClusterRoles and their bindings are always watched",
    )
    p.add_argument(
        "--resource",
        action="append",
        choices=sorted(BY_NAME),
        default=[],
        help="watch only this resource (repeat; default: all)",
    )
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings(**({"kafka": args.kafka} if args.kafka else {}))
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    resources = [BY_NAME[name] for name in args.resource] or list(RESOURCES)
    try:
        stats = run_watcher(settings, args.kubeconfig, args.namespace, resources, stop)
    except FileNotFoundError as exc:
        print(f"runward watch: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("edges.kubewatch").info("published %s", dict(stats.published))
    return 0


if __name__ == "__main__":
    sys.exit(main())
