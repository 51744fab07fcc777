"""The hunt commands' shared pieces without a cluster: output formats, time filters, event
descriptions, hash validation, stack ordering and row flags."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from detectors.ancestry import Chain, Link
from detectors.hunt.describe import describe
from detectors.hunt.output import Column, choose_format, default_format, shorten, table_lines, write_rows
from detectors.hunt.process import ancestry_rows
from detectors.hunt.scope import Scope, parse_time
from detectors.hunt.sightings import hash_clause
from detectors.hunt.stack import StackRow, ordered
from detectors.hunt.timeline import normalise_entity_id

COLS = [
    Column("path", "PATH", width=20),
    Column("count", "COUNT", align="right"),
    Column("feeds", "FEEDS"),
    Column("id", "ID", in_table=False),
]
ROWS = [
    {
        "path": "C:\\Windows\\System32\\svchost.exe",
        "count": 1200,
        "feeds": ["allow-a", "allow-b"],
        "id": "x1",
    },
    {"path": 'C:\\Temp\\a,"b".exe', "count": 3, "feeds": [], "id": "x2", "flag": True},
]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_parse_and_leave_out_empty_cells() -> None:
    out = io.StringIO()
    assert write_rows(iter(ROWS), COLS, "json", out) == 2
    parsed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert parsed[0] == {"path": ROWS[0]["path"], "count": 1200, "feeds": ["allow-a", "allow-b"], "id": "x1"}
    assert parsed[1] == {"path": 'C:\\Temp\\a,"b".exe', "count": 3, "id": "x2"}


def test_csv_has_a_header_of_keys_and_quotes_what_needs_it() -> None:
    out = io.StringIO()
    write_rows(iter(ROWS), COLS, "csv", out)
    records = list(csv.reader(io.StringIO(out.getvalue())))
    assert records[0] == ["path", "count", "feeds", "id"]
    assert records[1] == [ROWS[0]["path"], "1200", "allow-a;allow-b", "x1"]
    assert records[2] == ['C:\\Temp\\a,"b".exe', "3", "", "x2"]


def test_table_aligns_shortens_in_the_middle_and_hides_script_only_columns() -> None:
    lines = table_lines(COLS, ROWS)
    assert lines[0].split() == ["PATH", "COUNT", "FEEDS"]
    assert "x1" not in "\n".join(lines)
    first = lines[1]
    assert first.startswith("C:\\Windows…chost.exe ")  # 20 wide: the start and the end kept
    assert "allow-a,allow-b" in first
    # right-aligned counts end in the same column
    assert lines[1].index("1200") + 4 == lines[2].index(" 3") + 2
    assert lines[0].index("FEEDS") == lines[1].index("allow-a")
    assert lines[0].index("COUNT") + len("COUNT") == lines[1].index("1200") + 4


def test_shorten() -> None:
    assert shorten("abcdef", 0) == "abcdef"
    assert shorten("abcdef", 6) == "abcdef"
    assert shorten("abcdefgh", 5) == "ab…gh"
    assert len(shorten("x" * 100, 7)) == 7


def test_format_defaults_to_table_on_a_terminal_else_json() -> None:
    assert default_format(_Tty()) == "table"
    assert default_format(io.StringIO()) == "json"
    assert choose_format("csv", _Tty()) == "csv"
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        choose_format("xml", io.StringIO())


def test_parse_time_iso_and_ago() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_time("24h", now) == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert parse_time("1d12h", now) == datetime(2026, 2, 28, 0, 0, tzinfo=UTC)
    assert parse_time("2026-01-31", now) == datetime(2026, 1, 31, tzinfo=UTC)
    assert parse_time("2026-01-31T08:00:00+02:00", now) == datetime(2026, 1, 31, 6, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither an ISO"):
        parse_time("yesterday", now)


def test_scope_clauses() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    s = Scope(hosts=("a", "b"), since=since, event_codes=("1", "7"))
    assert s.clauses() == [
        {"terms": {"host.name": ["a", "b"]}},
        {"terms": {"event.code": ["1", "7"]}},
        {"range": {"@timestamp": {"format": "strict_date_optional_time", "gte": "2026-01-01T00:00:00.000Z"}}},
    ]
    assert Scope().query() == {"bool": {"filter": []}}


def test_hash_clause_picks_fields_by_length_and_rejects_non_hashes() -> None:
    sha = "AB" * 32
    fields = [next(iter(c["term"])) for c in hash_clause(sha)["bool"]["should"]]
    assert fields == ["related.hash", "process.hash.sha256", "file.hash.sha256"]
    assert all(next(iter(c["term"].values())) == sha.lower() for c in hash_clause(sha)["bool"]["should"])
    md5_fields = [next(iter(c["term"])) for c in hash_clause("a" * 32)["bool"]["should"]]
    assert "process.pe.imphash" in md5_fields and "file.hash.md5" in md5_fields
    for bad in ("xyz", "a" * 63, "g" * 64, ""):
        with pytest.raises(ValueError, match="is not a hash"):
            hash_clause(bad)


def test_entity_id_normalised_as_the_shipper_stores_it() -> None:
    g = "5770385f-c22a-43e0-bf4c-06f5698ffbd9"
    assert normalise_entity_id(g) == "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"
    assert normalise_entity_id("{" + g + "}") == "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"
    assert normalise_entity_id(" not-a-guid ") == "not-a-guid"


def _row(value: str, count: int) -> StackRow:
    return StackRow(values=(value,), count=count, hosts=1, first_seen=None, last_seen=None)


def test_stack_order_count_rare_value_with_and_without_limit() -> None:
    rows = [_row("b", 5), _row("a", 5), _row("c", 1), _row("d", 9)]
    assert [r.values[0] for r in ordered(iter(rows), "count", None)] == ["d", "a", "b", "c"]
    assert [r.values[0] for r in ordered(iter(rows), "rare", None)] == ["c", "a", "b", "d"]
    assert [r.values[0] for r in ordered(iter(rows), "rare", 2)] == ["c", "a"]
    assert [r.values[0] for r in ordered(iter(rows), "value", 3)] == ["b", "a", "c"]


def test_stack_row_to_row() -> None:
    r = StackRow(("x.exe", "ab"), 3, 2, "t1", "t2", allow=("al",), intel=(), known=True)
    assert r.to_row(["process.executable", "process.hash.sha256"]) == {
        "process.executable": "x.exe",
        "process.hash.sha256": "ab",
        "count": 3,
        "hosts": 2,
        "first_seen": "t1",
        "last_seen": "t2",
        "allowlisted": True,
        "allow": ["al"],
        "intel": [],
    }


def test_describe_per_event_code() -> None:
    net = {"event": {"code": "3"}, "network": {"transport": "tcp"},
           "source": {"ip": "10.0.0.5", "port": 50000},
           "destination": {"ip": "203.0.113.7", "port": 443, "domain": "c2.example"}}  # fmt: skip
    assert describe(net) == "tcp 10.0.0.5:50000 → 203.0.113.7:443 (c2.example)"
    dns = {"event": {"code": "22"}, "dns": {"question": {"name": "a.example"}, "resolved_ip": ["1.2.3.4"]}}
    assert describe(dns) == "a.example → 1.2.3.4"
    reg = {"event": {"code": "13"}, "registry": {"path": "HKLM\\Run\\x", "data": {"strings": ["c:\\x.exe"]}}}
    assert describe(reg) == "HKLM\\Run\\x = c:\\x.exe"
    img = {"event": {"code": "7"}, "file": {"path": "C:\\a.dll", "hash": {"sha256": "ff"}}}
    assert describe(img) == "C:\\a.dll sha256=ff"
    assert describe({"event": {"code": "11"}, "file": {"path": "C:\\f.txt"}}) == "C:\\f.txt"
    assert describe({"event": {"code": "5"}}) == ""


def test_ancestry_rows_root_first_and_the_break_shown() -> None:
    me = Link("{C}", "C:\\c.exe", "c.exe -x", 3, "t3", "{B}", user="D\\u")
    parent = Link("{B}", "C:\\b.exe", "b.exe", 2, "t2", "{A}")
    chain = Chain("h1", "{C}", links=[me, parent], broken=True, missing_entity_id="{A}")
    rows = ancestry_rows(chain)
    assert [r["relation"] for r in rows] == ["missing", "ancestor", "process"]
    assert [r.get("entity_id") for r in rows] == ["{A}", "{B}", "{C}"]
    assert [r["depth"] for r in rows] == [-2, -1, 0]
    assert rows[-1]["detail"] == "c.exe -x [D\\u]"
