"""Every stage module is a recipe, not a running thing: `build(settings) -> Stage` and `main()`,
nothing built at import and no state at module level (it belongs to the built stage)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from runward.core.config import Settings
from runward.core.stage import Stage

STAGES = ("ingest", "bom", "profiler", "correlator", "enforcer")


@pytest.mark.parametrize("name", STAGES)
def test_stage_module_builds_on_demand_and_holds_no_state(name: str, tmp_path: Path) -> None:
    module = importlib.import_module(f"services.{name}.app")
    assert callable(module.build) and callable(module.main)
    tree = ast.parse(inspect.getsource(module))
    assigned = [
        target.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    ]
    for attr in assigned:  # what the module itself defines at import (imports are their owners' business)
        value = getattr(module, attr)
        assert not isinstance(value, (Stage, dict, list, set)) and not hasattr(value, "agent"), (
            f"services.{name}.app.{attr} is built or mutable state at import; move it into build()"
        )
    one, two = module.build(Settings(home=tmp_path, kafka="10.0.0.1:9092")), module.build(Settings(home=tmp_path))
    assert isinstance(one, Stage) and one.name == name and one.app is not two.app
    assert one.config.kafka == "10.0.0.1:9092" and str(one.app.conf.broker[0]) == "kafka://10.0.0.1:9092"
