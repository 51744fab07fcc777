"""Reading CSV feeds: data rows keyed by the feed's own header (commented, ``# "first_seen_utc",...``,
or not), through the ``csv`` module (quoted commas), so column order and optional columns
(ThreatFox ``is_compromised``) do not matter. A malformed row is an issue, never an exception.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from ..model import ParseItem, clean, iso_utc
from .base import ParseContext, header_cells


class _CsvLines:
    """Feeds the data lines of a CSV feed to ``csv.reader``: skips blank and comment lines,
    remembers the physical line number and text of the last line handed over, and picks up a
    commented header (``# "first_seen_utc",...``)."""

    def __init__(self, lines: Iterable[str], first_column: str) -> None:
        self._lines = lines
        self._first = first_column
        self.line = 0
        self.raw = ""
        self.header: list[str] | None = None

    def __iter__(self) -> Iterator[str]:
        for n, raw in enumerate(self._lines, 1):
            text = raw.strip()
            if not text:
                continue
            if text[0] == "#":
                if self.header is None:
                    cells = header_cells(text)
                    if cells and cells[0] == self._first:
                        self.header = cells
                continue
            self.line, self.raw = n, raw
            yield raw


Row = dict[str, str]


def csv_rows(
    lines: Iterable[str],
    ctx: ParseContext,
    *,
    first_column: str,
    default_header: tuple[str, ...],
    skipinitialspace: bool = False,
) -> Iterator[tuple[int, str, Row] | ParseItem]:
    """``(line, raw, {column: value})`` per data row, or an issue for a malformed row."""
    source = _CsvLines(lines, first_column)
    reader = csv.reader(source, skipinitialspace=skipinitialspace)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield ctx.issue(source.line, f"malformed CSV: {exc}", source.raw)
            continue
        if not row or all(not c.strip() for c in row):
            continue
        cells = [c.strip() for c in row]
        if cells[0].lower() == first_column:  # an uncommented header
            source.header = [c.lower() for c in cells]
            continue
        header = source.header or list(default_header)
        if len(cells) != len(header):
            yield ctx.issue(source.line, f"expected {len(header)} fields, found {len(cells)}", source.raw)
            continue
        yield source.line, source.raw, dict(zip(header, cells, strict=True))


def timestamps(
    ctx: ParseContext, line: int, raw: str, **fields: str | None
) -> tuple[dict[str, str | None], list[ParseItem]]:
    """Timestamps normalised; a bad one becomes None plus an issue (the indicator is kept)."""
    out: dict[str, str | None] = {}
    issues: list[ParseItem] = []
    for key, value in fields.items():
        try:
            out[key] = iso_utc(value)
        except ValueError as exc:
            out[key] = None
            issues.append(ctx.issue(line, f"{key}: {exc} (indicator kept without it)", raw))
    return out, issues


def extra_fields(row: Row, **names: str) -> tuple[tuple[str, str], ...]:
    pairs = ((key, clean(row.get(col))) for key, col in names.items())
    return tuple(sorted((k, v) for k, v in pairs if v is not None))


def tag_list(text: str | None) -> tuple[str, ...]:
    value = clean(text)
    if value is None:
        return ()
    return tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
