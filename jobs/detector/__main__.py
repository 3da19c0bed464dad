"""`python -m jobs.detector train|eval ...`: the same commands as `runward detector`, without the control plane."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobs.detector.commands import run_eval, run_train
from services.ingest.injection.model import MODEL_DIR, ModelError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.detector")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="build the injection model from the recorded corpora")
    train.add_argument("--out", type=Path, default=MODEL_DIR)
    train.add_argument("--c", type=float, default=16.0)
    train.add_argument("--seed", type=int, default=11)
    train.add_argument("--splits-dir", type=Path, default=None)
    ev = sub.add_parser("eval", help="recall, FPR, precision, AUROC and latency on labelled JSON lines")
    ev.add_argument("files", nargs="+", type=Path)
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            print(run_train(args.out, args.c, args.seed, args.splits_dir))
        else:
            print(run_eval(args.files, args.json, args.model_dir))
    except (ValueError, FileNotFoundError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
