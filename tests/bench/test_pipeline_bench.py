"""The pipeline benchmark's short mode runs in CI as a smoke test: no timing asserts, only that
every stage drained its flood and the figures it prints are there (issue 14, bench/pipeline)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_short_run_prints_and_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "pipeline" / "run.py"), "--short", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "raw event -> attack story" in proc.stdout
    figures = json.loads(out.read_text())
    assert set(figures["stages"]) == {"ingest", "profiler", "bom", "correlator", "enforcer"}
    for stage, r in figures["stages"].items():
        assert r["complete"], f"{stage} did not drain its flood: {r}"
        assert r["events_per_s_per_worker"] > 0 and not math.isnan(r["events_per_s_per_worker"]), stage
    assert figures["transport_events_per_s"] > 0
    assert figures["story_latency_ms"]["n"] >= 1, "no probe became an attack story"
    assert figures["story_latency_ms"]["p99"] >= figures["story_latency_ms"]["p50"] > 0
    for stage, r in figures["stages"].items():
        assert r["cpu_us_per_event"] > 0, f"{stage}: no CPU figure: {r}"
        assert r["peak_rss_mb"] > 0, f"{stage}: no memory figure: {r}"


def test_in_process_bench_drives_every_stage_and_publishes(tmp_path: Path) -> None:
    out = tmp_path / "inproc.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "pipeline" / "inproc.py"), "--events", "400", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert set(figures) == {"ingest", "profiler", "bom", "correlator", "enforcer"}
    for stage, r in figures.items():
        assert r["processed"] + r["dead_letters"] == r["records"] > 0, f"{stage}: {r}"
        assert r["published"] > 0 and r["us_per_record_cpu"] > 0, f"{stage}: {r}"
    # The flood is well-formed: ingest dead-letters none of it and enriches every record.
    assert figures["ingest"]["dead_letters"] == 0 and figures["ingest"]["published"] >= 400
