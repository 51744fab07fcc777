"""Golden files: one hand-written RawEvent per Sysmon event ID and its expected ECS document.

Regenerate after an intended mapping change, then review the diff by eye against
docs/ecs-mapping.md:

    REGEN_GOLDEN=1 .venv/bin/pytest tests/unit/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from shipper.raw import RawEvent
from shipper.sysmon.ecs import document_id, to_ecs
from shipper.sysmon.events import EVENTS

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
INPUTS = sorted(GOLDEN.glob("*.input.json"))
REGEN = os.environ.get("REGEN_GOLDEN") == "1"


def _load(path: Path) -> RawEvent:
    return RawEvent(**json.loads(path.read_text(encoding="utf-8")))


def _expected_path(path: Path) -> Path:
    return path.with_name(path.name.replace(".input.json", ".expected.json"))


def _render(raw: RawEvent) -> dict[str, Any]:
    return {"_id": document_id(raw), "_source": to_ecs(raw)}


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("path", INPUTS, ids=[p.name.removesuffix(".input.json") for p in INPUTS])
def test_golden(path: Path) -> None:
    raw = _load(path)
    actual = _render(raw)
    expected_path = _expected_path(path)
    if REGEN:
        expected_path.write_text(_dump(actual), encoding="utf-8")
    assert expected_path.exists(), f"no {expected_path.name}: run with REGEN_GOLDEN=1 and review it"
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert json.loads(_dump(actual)) == expected


def test_every_event_id_has_a_golden() -> None:
    covered = {_load(p).event_id for p in INPUTS}
    missing = set(EVENTS) - covered
    assert not missing, f"event IDs without a golden input: {sorted(missing)}"
    assert covered - set(EVENTS), "no golden for an event ID outside the table"


def test_goldens_include_pipeline_errors() -> None:
    kinds = {to_ecs(_load(p))["event"]["kind"] for p in INPUTS}
    assert kinds == {"event", "pipeline_error"}
