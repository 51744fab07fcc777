"""``iter_documents(start=...)``: a line-based source read from a record's resume point yields
exactly the rest of a full read (documents, ids, seq numbers, positions), serially and with
worker processes; the records before the offset are not read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from samples.__main__ import main as samples_main
from shipper.checkpoint import ResumePoint
from shipper.errors import InputError
from shipper.pipeline import Item, Stats, expand_inputs, iter_documents


def _key(item: Item) -> tuple[Any, ...]:
    return (item.doc, item.doc_id, item.index_suffix, item.source, item.seq, item.position)


@pytest.fixture(scope="module")
def resumable(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Item]]:
    out = tmp_path_factory.mktemp("sample")
    result = CliRunner().invoke(
        samples_main, ["generate", "--out", str(out), "--events", "600", "--seed", "5"]
    )
    assert result.exit_code == 0, result.output
    found: dict[str, list[Item]] = {}
    for path in expand_inputs([str(out)]):
        items = list(iter_documents([path]))
        if sum(item.end_offset is not None for item in items) > 10:
            found[path] = items
    return found


def test_sample_has_every_line_based_form(resumable: dict[str, list[Item]]) -> None:
    suffixes = {Path(p).suffix for p in resumable}
    assert len(resumable) >= 3, suffixes


@pytest.mark.parametrize("workers", [1, 2])
def test_start_yields_the_rest_of_a_full_read(resumable: dict[str, list[Item]], workers: int) -> None:
    paths = sorted(resumable)
    start: dict[str, ResumePoint] = {}
    expected: list[tuple[Any, ...]] = []
    for n, path in enumerate(paths):
        items = resumable[path]
        points = [i for i, item in enumerate(items) if item.end_offset is not None]
        cut = points[(n * 7) % len(points)]
        at = items[cut]
        assert at.end_offset is not None and at.end_line is not None
        start[path] = ResumePoint(at.end_offset, at.end_line, at.seq)
        expected += [_key(item) for item in items[cut + 1 :]]
    stats = Stats()
    got = [_key(item) for item in iter_documents(paths, stats=stats, start=start, workers=workers)]
    assert got == expected
    full = sum(len(items) for items in resumable.values())
    assert stats.documents == len(expected) < full


def test_start_and_skip_together(resumable: dict[str, list[Item]]) -> None:
    path = sorted(resumable)[0]
    items = resumable[path]
    first = next(item for item in items if item.end_offset is not None)
    assert first.end_offset is not None and first.end_line is not None
    skip_to = items[5].seq
    got = list(
        iter_documents(
            [path],
            start={path: ResumePoint(first.end_offset, first.end_line, first.seq)},
            skip={path: skip_to},
        )
    )
    assert [_key(item) for item in got] == [_key(item) for item in items[6:]]


def test_start_refused_for_evtx(tmp_path: Path) -> None:
    evtx = tmp_path / "x.evtx"
    evtx.write_bytes(b"ElfFile\x00" + b"\x00" * 120)
    with pytest.raises(InputError, match="offset"):
        list(iter_documents([str(evtx)], start={str(evtx): ResumePoint(100, 3, 2)}))
