"""`runward detector train|eval`: build and measure the prompt-injection detector (a Typer sub-app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jobs.detector.commands import run_eval, run_train
from services.ingest.injection.model import MODEL_DIR, ModelError

app = typer.Typer(help="Prompt-injection and jailbreak detector: train it from the recorded corpora, measure it.")


@app.command()
def train(
    out: Annotated[Path, typer.Option(help="where model.json and model.bin.gz are written")] = MODEL_DIR,
    c: Annotated[float, typer.Option("--c", help="inverse regularisation strength of the logistic regression")] = 16.0,
    seed: Annotated[int, typer.Option(help="seed of the written corpus and of augmentation")] = 11,
    splits_dir: Annotated[
        Path | None, typer.Option(help="also write dev.jsonl and test.jsonl here (e.g. jobs/detector/data)")
    ] = None,
) -> None:
    """Build the model from jobs/detector (see its SOURCES.md); threshold and calibration come from dev only."""
    typer.echo(run_train(out, c, seed, splits_dir))


@app.command("eval")
def evaluate(
    files: Annotated[list[Path], typer.Argument(help='labelled JSON lines: {"text": "...", "label": 0 or 1}')],
    as_json: Annotated[
        bool, typer.Option("--json", help="one JSON object: n, recall, fpr, precision, auroc, p50_ms, p99_ms")
    ] = False,
    model_dir: Annotated[Path, typer.Option(help="a model other than the shipped one")] = MODEL_DIR,
) -> None:
    """Recall, false-positive rate, precision, AUROC and per-text latency of the detector on FILES."""
    try:
        typer.echo(run_eval(files, as_json, model_dir))
    except (ValueError, FileNotFoundError, ModelError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
