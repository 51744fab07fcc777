"""The stream's source boundaries: where each source starts and ends, with its record count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shipper.pipeline import Stats, iter_documents, stream
from shipper.stream import Item, ReadOptions, SourceEnded, SourceRead, SourceStarted


def _other_provider(line: str) -> str:
    doc = json.loads(line)
    doc["winlog"]["provider_name"] = "Microsoft-Windows-Security-Auditing"
    doc["winlog"]["channel"] = "Security"
    doc.get("event", {}).pop("provider", None)
    return json.dumps(doc)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    gen = tmp_path_factory.mktemp("gen")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "samples",
            "generate",
            "--out",
            str(gen),
            "--events",
            "900",
            "--forms",
            "winlogbeat",
        ],
        check=True,
        capture_output=True,
    )
    lines = (gen / "winlogbeat.ndjson").read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    for i, size in enumerate((300, 5, 295, 300)):
        part, lines = lines[:size], lines[size:]
        if i == 1:  # a source with no document at all
            part = [_other_provider(line) for line in part]
        if i == 2:  # ends with records that make no document
            part[-3:] = [_other_provider(line) for line in part[-3:]]
        path = gen / f"part-{i}.ndjson"
        path.write_text("\n".join(part) + "\n", encoding="utf-8")
        out.append(str(path))
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_the_stream_says_where_each_source_starts_and_ends(sources: list[str], workers: int) -> None:
    """Every document arrives between its source's SourceStarted and SourceEnded, and the end
    gives the source's record count: trailing records without a document included, a source
    without any document too, and in worker processes the same."""
    stats = Stats()
    skip = {sources[3]: 10}
    reads = [SourceRead(p, skip.get(p, 0)) for p in sources]
    events = list(stream(reads, ReadOptions(), stats, workers=workers))
    current: str | None = None
    ended: list[SourceEnded] = []
    for event in events:
        if isinstance(event, SourceStarted):
            assert current is None and event.source == sources[event.index]
            current = event.source
        elif isinstance(event, SourceEnded):
            assert event.source == current
            ended.append(event)
            current = None
        else:
            assert event.source == current
    assert current is None
    assert [(e.index, e.source) for e in ended] == list(enumerate(sources))
    expected = []
    for path in sources:
        one = Stats()
        for _ in iter_documents([path], stats=one):
            pass
        expected.append(one.records)
    assert expected == [300, 5, 295, 300]
    assert [e.records for e in ended] == expected
    assert not any(e.held_back for e in ended)
    assert stats.documents == 300 + 292 + 290 and stats.other_providers
    assert stats.records == sum(expected) and stats.sources == len(sources)


def test_a_read_error_on_the_last_record_is_held_back_only_at_the_end(
    sources: list[str], tmp_path: Path
) -> None:
    """``hold_last_error``: an unfinished last line is neither counted nor yielded, and the end
    says so; the same bad line followed by another record is an error document as usual."""
    good = Path(sources[0]).read_text(encoding="utf-8").splitlines()[:3]
    last = tmp_path / "last.ndjson"
    last.write_text("\n".join(good) + '\n{"half": ', encoding="utf-8")
    middle = tmp_path / "middle.ndjson"
    middle.write_text(good[0] + '\n{"half": \n' + good[1] + "\n", encoding="utf-8")
    for skip_errors in (False, True):
        options = ReadOptions(hold_last_error=True, skip_errors=skip_errors)
        stats = Stats()
        events = list(stream([SourceRead(str(last)), SourceRead(str(middle))], options, stats))
        ends = [e for e in events if isinstance(e, SourceEnded)]
        assert [(e.records, e.held_back) for e in ends] == [(3, True), (3, False)]
        docs = [e for e in events if isinstance(e, Item)]
        assert [d.is_error for d in docs] == [False] * 3 + [False, not skip_errors, False][: 3 - skip_errors]
        assert stats.records == 6 and sum(stats.errors.values()) == 1
