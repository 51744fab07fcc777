"""An evaluation of Sigma rules that does not go through our ECS mapping: the raw Sysmon records
in an SQLite table (one column per EventData name, compared case-insensitively, as Zircolite
does), the rules converted with pySigma's SQLite backend. It checks our conversion
(``tests/integration/test_sigma_agreement.py``) and is the baseline of ``bench/sigma.py``."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sigma.backends.sqlite.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation
from sigma.rule import SigmaRule

from detectors.sigma import schema
from detectors.sigma.pipeline import event_codes
from shipper.raw import RawEvent

TABLE = "logs"
SYSTEM_COLUMNS = ("EventID", "Channel", "Provider_Name", "Computer", "RecordID")


@dataclass(frozen=True, slots=True)
class Key:
    """A record, as both evaluations name it."""

    computer: str
    record_id: int
    event_code: str


def raw_pipeline() -> ProcessingPipeline:
    """Sigma's Sysmon logsources as EventID conditions on the raw records, nothing else."""
    items = [
        ProcessingItem(
            identifier=f"sysmon_{category}",
            # EventID as numbers, as the records hold them
            transformation=AddConditionTransformation(cast(Any, {"EventID": [int(c) for c in codes]})),
            rule_conditions=[LogsourceCondition(product="windows", category=category)],
        )
        for category, codes in schema.CATEGORIES.items()
    ]
    items.append(
        ProcessingItem(
            identifier="sysmon_service",
            transformation=AddConditionTransformation({"Channel": "Microsoft-Windows-Sysmon/Operational"}),
            rule_conditions=[LogsourceCondition(product="windows", service="sysmon")],
        )
    )
    return ProcessingPipeline(name="raw Sysmon records", priority=20, items=items)


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(pattern: str, value: object) -> bool:
    return value is not None and _compiled(pattern).search(str(value)) is not None


def connect(events: Iterable[RawEvent]) -> sqlite3.Connection:
    """An in-memory database of ``events`` (Sysmon only), one column per field name seen."""
    rows: list[dict[str, object]] = []
    # SQLite column names are case-insensitive: SourceProcessGuid and SourceProcessGUID are one
    columns: dict[str, str] = {c.lower(): c for c in SYSTEM_COLUMNS}
    for raw in events:
        if not raw.is_sysmon:
            continue
        row: dict[str, object] = {
            "EventID": raw.event_id,
            "Channel": raw.channel,
            "Provider_Name": raw.provider,
            "Computer": raw.computer,
            "RecordID": raw.record_id,
        }
        for name, value in raw.event_data.items():
            column = columns.setdefault(name.lower(), name)
            row.setdefault(column, value)
        rows.append(row)
    db = sqlite3.connect(":memory:")
    db.create_function("regexp", 2, _regexp, deterministic=True)
    names = list(columns.values())
    cols = ", ".join(
        f"`{c}` {'INTEGER' if c in ('EventID', 'RecordID') else 'TEXT COLLATE NOCASE'}" for c in names
    )
    db.execute(f"CREATE TABLE {TABLE} ({cols})")
    marks = ", ".join("?" for _ in names)
    db.executemany(
        f"INSERT INTO {TABLE} ({', '.join(f'`{c}`' for c in names)}) VALUES ({marks})",
        ([row.get(c) for c in names] for row in rows),
    )
    return db


def convert(rules: Sequence[SigmaRule]) -> dict[str, str]:
    """Rule id → SQL, for every rule on a Sysmon logsource the SQLite backend can convert."""
    backend = sqliteBackend(raw_pipeline())
    out: dict[str, str] = {}
    for rule in rules:
        if rule.id is None or event_codes(rule.logsource) is None:
            continue
        try:
            queries = backend.convert(SigmaCollection([rule]))
        except Exception:  # a rule the baseline cannot convert is left out of it
            continue
        if len(queries) == 1 and isinstance(queries[0], str):
            out[str(rule.id)] = queries[0].replace("<TABLE_NAME>", TABLE)
    return out


def matches(db: sqlite3.Connection, sql: str) -> set[Key]:
    """The records ``sql`` (``SELECT * FROM logs WHERE …``) selects."""
    query = sql.replace("SELECT *", "SELECT Computer, RecordID, EventID", 1)
    try:
        found = db.execute(query).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such column" in str(exc):  # a field no record has: nothing matches
            return set()
        raise
    return {Key(str(c), int(r), str(e)) for c, r, e in found}
