"""``iter_documents(workers=N)`` maps sources in worker processes and yields exactly what one
process yields: the same documents, ids, index suffixes, sources, sequence numbers, positions
and stats, in the same order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from samples.__main__ import main as samples_main
from shipper import pipeline
from shipper.errors import InputError
from shipper.pipeline import Stats, expand_inputs, iter_documents, parallel
from tests.shared_data import sysmon_data

Run = tuple[list[tuple[Any, ...]], dict[str, Any]]


def _run(paths: list[str], workers: int | None, **kwargs: Any) -> Run:
    stats = Stats()
    items = [
        (item.doc, item.doc_id, item.index_suffix, item.source, item.seq, item.position)
        for item in iter_documents(paths, stats=stats, workers=workers, **kwargs)
    ]
    return items, stats.as_dict()


@pytest.fixture(scope="module")
def sample_paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("sample")
    result = CliRunner().invoke(
        samples_main, ["generate", "--out", str(out), "--events", "1200", "--seed", "11"]
    )
    assert result.exit_code == 0, result.output
    # every form, plus truth.json and intel/ files: documents and read errors alike
    return expand_inputs([str(out)])


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many batches per source and a short queue: exercises batching and back-pressure."""
    monkeypatch.setattr(parallel, "BATCH_DOCUMENTS", 7)
    monkeypatch.setattr(parallel, "IN_FLIGHT_BATCHES", 2)


def _shared_evtx(count: int) -> list[str]:
    files = sorted(str(p) for p in (sysmon_data() / "evtx-attack-samples").rglob("*.evtx"))
    assert files
    step = max(1, len(files) // count)
    return files[::step][:count]


def test_effective_workers() -> None:
    assert pipeline.effective_workers(4, ["a"]) == 1
    assert pipeline.effective_workers(4, ["a", "-"]) == 1
    assert pipeline.effective_workers(4, ["a", "b"]) == 2
    assert pipeline.effective_workers(1, ["a", "b"]) == 1
    assert pipeline.effective_workers(None, ["a", "b"]) == min(2, os.cpu_count() or 1)


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("skip_errors", [False, True])
def test_generated_sample_same_with_workers(sample_paths: list[str], skip_errors: bool) -> None:
    serial = _run(sample_paths, 1, skip_errors=skip_errors)
    assert len(serial[0]) > 1000
    assert serial[1]["errors"], "the sample folder should include unreadable files"
    assert _run(sample_paths, 2, skip_errors=skip_errors) == serial
    assert _run(sample_paths, 3, skip_errors=skip_errors) == serial


@pytest.mark.usefixtures("small_batches")
def test_shared_evtx_same_with_workers() -> None:
    files = _shared_evtx(8)
    serial = _run(files, 1)
    assert serial[1]["sysmon_events"] > 0
    assert _run(files, 2) == serial
    skip = {files[0]: 3, files[-1]: 1}
    assert _run(files, 2, skip=skip) == _run(files, 1, skip=skip)


def test_error_in_a_source_is_raised_in_order(sample_paths: list[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "gone.ndjson")
    paths = [sample_paths[0], missing, sample_paths[1]]
    for workers in (1, 2):
        stats = Stats()
        seen: list[str] = []
        with pytest.raises(InputError, match=r"gone\.ndjson"):
            for item in iter_documents(paths, stats=stats, workers=workers):
                seen.append(item.doc_id)
        assert stats.sources == 2
        if workers == 1:
            expected = (list(seen), stats.as_dict())
        else:
            assert (seen, stats.as_dict()) == expected


def test_stopping_early_ends_the_workers(sample_paths: list[str]) -> None:
    import multiprocessing

    before = set(multiprocessing.active_children())
    stream = iter_documents(sample_paths, workers=2)
    first = next(stream)
    assert first.seq >= 1
    stream.close()
    assert set(multiprocessing.active_children()) <= before
