"""Rows out of every hunt command: an aligned table for people, CSV or JSON lines for scripts.

- ``table``: a header, then one line per row; long cells are shortened in the middle (a path
  keeps its drive and its file name); lists are joined with ``,``.
- ``csv``: a header of the column keys (field names), then one record per row; lists joined
  with ``;``; every row written as it comes (memory flat).
- ``json``: one object per row and line (JSON lines), keys = column keys, lists as arrays, empty
  cells left out; every row written as it comes.

The default is ``table`` when stdout is a terminal, else ``json``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import orjson

Format = Literal["table", "csv", "json"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json")
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Column:
    """``key`` names the value in a row (and the CSV / JSON key); ``title`` heads the table;
    ``width`` caps the table cell (0: never shortened); ``in_table`` False keeps a column for
    CSV and JSON only (ids a script pivots on)."""

    key: str
    title: str
    width: int = 0
    align: Literal["left", "right"] = "left"
    in_table: bool = True


def default_format(stream: TextIO) -> Format:
    isatty = getattr(stream, "isatty", None)
    return "table" if callable(isatty) and isatty() else "json"


def choose_format(value: str | None, stream: TextIO) -> Format:
    if value is None:
        return default_format(stream)
    if value not in FORMATS:
        raise ValueError(f"unknown format {value!r}; choose from {', '.join(FORMATS)}")
    return value


def shorten(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters (0: unchanged)."""
    if width <= 0 or len(text) <= width:
        return text
    if width == 1:
        return ELLIPSIS
    tail = (width - 1) // 2
    head = width - 1 - tail
    return text[:head] + ELLIPSIS + text[len(text) - tail :]


def cell_text(value: Any, sep: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, list | tuple):
        return sep.join(cell_text(v, sep) for v in value)
    return str(value)


def table_lines(columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> list[str]:
    """The table as lines: header first; trailing blanks stripped."""
    columns = [c for c in columns if c.in_table]
    cells = [[shorten(cell_text(r.get(c.key), ","), c.width) for c in columns] for r in rows]
    titles = [c.title for c in columns]
    widths = [max([len(t), *(len(row[i]) for row in cells)]) for i, t in enumerate(titles)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if c.align == "right" else v.ljust(w)
            for v, w, c in zip(values, widths, columns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return [line(titles), *(line(row) for row in cells)]


def write_rows(rows: Iterable[dict[str, Any]], columns: Sequence[Column], fmt: Format, out: TextIO) -> int:
    """Write ``rows`` in ``fmt``; returns how many rows were written."""
    n = 0
    if fmt == "json":
        for r in rows:
            obj = {c.key: r[c.key] for c in columns if r.get(c.key) not in (None, "", [])}
            out.write(orjson.dumps(obj).decode() + "\n")
            n += 1
    elif fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow([c.key for c in columns])
        for r in rows:
            w.writerow([cell_text(r.get(c.key), ";") for c in columns])
            n += 1
    else:
        materialised = list(rows)
        for text in table_lines(columns, materialised):
            out.write(text + "\n")
        n = len(materialised)
    out.flush()
    return n
