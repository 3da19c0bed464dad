"""The enforcer's outputs do not move when its cost does: the bundles of a fixed run are byte for
byte those recorded before it reused documents and shared state (`tests/enforcer/golden.py`),
again when every document is already built, and `apply` leaves the state and record it is given
as they were (a record that fails, or a bundle the gate refuses, must leave nothing behind)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from services.enforcer.domain import EnforcerState, PromotionRefused, apply
from tests.enforcer import golden


def _first_difference(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> str:
    for have, expected in zip(got, want, strict=False):
        if have != expected:
            return f"first difference at {expected['deployment']} step {expected['step']}:\n{have}\n!=\n{expected}"
    return f"{len(got)} outcomes, {len(want)} recorded"


def test_the_bundles_are_byte_identical_to_the_recorded_run() -> None:
    want = json.loads(golden.GOLDEN.read_text())
    got = golden.run()
    assert got == want, _first_difference(got, want)


def test_a_second_run_on_documents_already_built_is_the_same() -> None:
    """Whatever a run leaves behind to reuse, a later run of the same records yields the same bytes."""
    first = golden.run()
    assert golden.run() == first


def _dump(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


def test_apply_leaves_the_given_state_and_record_unchanged() -> None:
    states: dict[str, EnforcerState | None] = dict.fromkeys(golden.SELECTORS)
    handed_out: list[tuple[EnforcerState, dict[str, Any]]] = []
    for deployment, step, record, report in golden.interleaved():
        given, before, record_before = states[deployment], _dump(states[deployment]), record.model_dump()
        try:
            state, _ = apply(given, record, golden.NOW, report)
        except PromotionRefused:
            state = None
        assert _dump(given) == before, f"apply changed the state it was given at {deployment} step {step}"
        assert record.model_dump() == record_before, f"apply changed its record at {deployment} step {step}"
        if state is not None:
            states[deployment] = state
            handed_out.append((state, state.model_dump()))
    # No later record reached back into a state an earlier one returned (the table may hold it).
    for state, dumped in handed_out:
        assert state.model_dump() == dumped
