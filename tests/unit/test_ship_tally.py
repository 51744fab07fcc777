"""``ship --workers``: the per-source record counts that tell the shipper where a source ended."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shipper.pipeline import Stats, iter_documents
from shipper.ship import _Tally


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
def test_tally_counts_the_records_of_each_source(sources: list[str], workers: int) -> None:
    tally = _Tally()
    skip = {sources[3]: 10}
    seen: list[tuple[int, str]] = []  # (index of the source being read, item source)
    for item in iter_documents(sources, stats=tally, workers=workers, skip=skip):
        seen.append((len(tally.starts) - 1, item.source))
    assert all(sources[index] == source for index, source in seen)
    assert len(tally.starts) == len(sources) == tally.sources
    expected = []
    for path in sources:
        one = Stats()
        for _ in iter_documents([path], stats=one):
            pass
        expected.append(one.records)
    assert expected == [300, 5, 295, 300]
    assert tally.documents == 300 + 292 + 290 and tally.other_providers
    assert [tally.counted(i) for i in range(len(sources))] == expected
    assert tally.records == sum(expected)
    tally.uncounted(1)
    tally.records -= 1
    assert [tally.counted(i) for i in range(len(sources))] == [
        300,
        4,
        295,
        300,
    ]  # the later sources keep their counts


def test_tally_is_a_plain_stats_to_its_readers() -> None:
    tally = _Tally()
    tally.sources += 1
    tally.records += 7
    tally.sources += 1
    assert tally.as_dict()["sources"] == 2 and tally.as_dict()["records"] == 7
    assert tally.starts == [0, 7]


def test_fewer_collections_while_shipping_and_as_before_after() -> None:
    import gc

    from shipper.ship import GC_YOUNG_THRESHOLD, fewer_collections

    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == max(before[0], GC_YOUNG_THRESHOLD)
        assert gc.get_freeze_count() > 0
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # cycles are still collected
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
