"""The layout is the architecture: the import rules in pyproject.toml ([tool.importlinter]) hold.

The core imports nothing of the rest; no stage imports another; edges (sensor, intake, gateway)
depend only on the core; the control plane sits on top. A broken rule fails here with the
import chain that breaks it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_rules_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    """The contract is not vacuous: a core module importing a stage breaks it."""
    import shutil

    for name in ("runward", "services", "sensor", "edges", "jobs"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "build"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "runward" / "core" / "leak.py").write_text("from services.profiler import apd\n")
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "runward.core.leak -> services.profiler.apd" in result.stdout
