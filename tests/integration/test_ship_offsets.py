"""Resuming line-based sources from a byte offset against a real node: ``watch`` reads a grown
file only from where the last pass stopped, and ``ship`` resumes a partial file from the
checkpoint's offset. Proof: after a part is shipped, everything past the first record up to the
resume point is overwritten in place with garbage (same size, same inode) — a read from the start
would turn that garbage into error documents (and miscount the records to skip); the documents in
the index must be exactly those of the pristine file, and only the new records are read."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from samples.__main__ import main as samples_main
from shipper.checkpoint import HEAD_BYTES, CheckpointStore
from shipper.config import ShipperConfig
from shipper.es import ClusterSettings
from shipper.pipeline import iter_documents
from shipper.readers.registry import open_source
from shipper.ship import Shipper
from shipper.templates import install
from shipper.watch import Watcher

GARBAGE = b"<Event>garbage</Event> {not json\n"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    result = CliRunner().invoke(
        samples_main, ["generate", "--out", str(out), "--events", "120", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    return out


def _chunks(path: Path) -> list[bytes]:
    """The file cut into its records' bytes (by their end offsets)."""
    data = path.read_bytes()
    ends = [r.end_offset for r in open_source(path)]
    assert all(end is not None for end in ends[:-1])
    cuts = [0, *(end for end in ends[:-1] if end is not None), len(data)]
    return [data[a:b] for a, b in pairwise(cuts)]


def _past_head(chunks: list[bytes]) -> int:
    """The end of the first record past the head a reader checks (garbling the head would make
    it a rewritten file, read from the start)."""
    end = 0
    for chunk in chunks:
        end += len(chunk)
        if end >= HEAD_BYTES:
            return end
    raise AssertionError("the sample is shorter than a head")


def _garble(path: Path, start: int, stop: int) -> None:
    """Overwrite bytes [start, stop) in place with garbage of the same size."""
    size = stop - start
    junk = (GARBAGE * (size // len(GARBAGE) + 1))[: size - 1] + b"\n"
    with open(path, "r+b") as fh:
        fh.seek(start)
        fh.write(junk)


def _ids(es: Elasticsearch, prefix: str) -> list[str]:
    es.indices.refresh(index=f"{prefix}-events*")
    resp = es.search(index=f"{prefix}-events*", size=1000, query={"match_all": {}}, source=["event.kind"])
    hits = resp["hits"]["hits"]
    assert all((h["_source"].get("event") or {}).get("kind") != "pipeline_error" for h in hits)
    return sorted(h["_id"] for h in hits)


def _expected_ids(data: bytes, tmp_path: Path, name: str) -> list[str]:
    pristine = tmp_path / f"pristine-{name}"
    pristine.write_bytes(data)
    return sorted(item.doc_id for item in iter_documents([str(pristine)]))


def _shipper(es: Elasticsearch, es_settings: ClusterSettings, prefix: str, state: Path) -> Shipper:
    cfg = ShipperConfig(cluster=es_settings, index_prefix=prefix, state_dir=str(state))
    return Shipper(cfg, es, flush_interval=0.05)


@pytest.mark.parametrize("name", ["winlogbeat.ndjson", "sysmon.xml", "sysmon.txt"])
def test_watch_reads_a_grown_file_only_from_the_last_offset(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, sample: Path, tmp_path: Path, name: str
) -> None:
    install(es, prefix)
    chunks = _chunks(sample / name)
    assert len(chunks) == 120
    folder = tmp_path / "watched"
    folder.mkdir()
    log = folder / name
    log.write_bytes(b"".join(chunks[:50]))
    sh = _shipper(es, es_settings, prefix, tmp_path / "state")
    watcher = Watcher(sh, str(folder), poll_interval=0.01)
    try:
        assert watcher.poll_once() == 1
        sh.sink.flush()
        assert sh.stats.records == 50
        # a text block ended by the end of the file may still grow: the next pass reads it again
        again = 1 if name == "sysmon.txt" else 0
        point = sh.read_point(str(log))
        assert point is not None and point.offset == sum(map(len, chunks[: 50 - again]))
        _garble(log, _past_head(chunks), point.offset)
        with open(log, "ab") as fh:
            fh.write(b"".join(chunks[50:80]))
        assert watcher.poll_once() == 1
        sh.sink.flush()
        assert sh.stats.records == 80 + again  # the 30 new records, not the 80 of the whole file
        if name != "sysmon.txt":  # a half-written last record is held back, then read whole
            half = len(chunks[80]) // 2
            with open(log, "ab") as fh:
                fh.write(chunks[80][:half])
            watcher.poll_once()
            sh.sink.flush()
            _garble(log, _past_head(chunks), sum(map(len, chunks[:80])))
            with open(log, "ab") as fh:
                fh.write(chunks[80][half:] + chunks[81])
            watcher.poll_once()
            expected_records = 82
        else:
            expected_records = 80
    finally:
        watcher.close()
        sh.close()
    assert sh.stats.records == expected_records + again
    assert sh.stats.errors == {}
    assert _ids(es, prefix) == _expected_ids(b"".join(chunks[:expected_records]), tmp_path, name)
    cp = CheckpointStore(tmp_path / "state").load(str(log))
    assert cp is not None and cp.acked == expected_records
    last = expected_records - again
    assert cp.offset == sum(map(len, chunks[:last])) and cp.offset_seq == last


@pytest.mark.parametrize("old_checkpoint", [False, True])
def test_ship_resumes_a_partial_file_from_the_checkpoint_offset(
    es: Elasticsearch,
    es_settings: ClusterSettings,
    prefix: str,
    sample: Path,
    tmp_path: Path,
    old_checkpoint: bool,
) -> None:
    install(es, prefix)
    chunks = _chunks(sample / "nxlog.ndjson")
    log = tmp_path / "nxlog.ndjson"
    log.write_bytes(b"".join(chunks))
    state = tmp_path / "state"
    first = _shipper(es, es_settings, prefix, state)

    def stop_at_40(item: Any) -> None:
        if item.seq == 40:
            first.stop.set()

    first.ship_source(str(log), on_item=stop_at_40)
    first.close()
    store = CheckpointStore(state)
    cp = store.load(str(log))
    assert cp is not None and cp.acked == 40 and not cp.done
    assert cp.offset == sum(map(len, chunks[:40])) and cp.offset_line == 41 and cp.offset_seq == 40
    if old_checkpoint:  # written before resume points existed: resume by count, from the start
        (target,) = [f for f in (state / "checkpoints").glob("*.json") if not f.name.startswith(".")]
        data = json.loads(target.read_text())
        for key in ("offset", "offset_line", "offset_seq"):
            del data[key]
        target.write_text(json.dumps(data))
    else:
        _garble(log, _past_head(chunks), cp.offset)
    second = _shipper(es, es_settings, prefix, state)
    summary = second.run([str(log)])
    assert summary.resumed_sources == 1
    assert second.stats.records == (120 if old_checkpoint else 80)
    assert second.stats.errors == {}
    assert summary.shipped == 80
    assert _ids(es, prefix) == _expected_ids(b"".join(chunks), tmp_path, "nxlog.ndjson")
    done = store.load(str(log))
    assert done is not None and done.done and done.acked == 120 and done.offset == len(b"".join(chunks))
