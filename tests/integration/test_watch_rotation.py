"""Watch mode under the ways logs are rotated: copytruncate rewritten larger within one poll,
files renamed in the folder, moved out of it or deleted right after appends, and a line still
being written when its file leaves. Seeded random rounds; every written record arrives, counted
exactly (deterministic ids make the cluster's count the number of distinct records)."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from elasticsearch import Elasticsearch

from shipper.checkpoint import CheckpointStore, FileIdentity
from shipper.config import ShipperConfig
from shipper.es import ClusterSettings
from shipper.ship import Shipper
from shipper.templates import install
from shipper.watch import Watcher
from tests.shipping import SHIP, count, generate_day, run, ship_args


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    day = generate_day(tmp_path_factory.mktemp("day"), events=8000, seed=23)
    return day.read_bytes().splitlines(keepends=True)


class _Log:
    """The records written so far, in order, to whichever file is the log."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.written = 0

    def write(self, fh: IO[bytes], n: int) -> None:
        assert self.written + n < len(self.lines), "the test ran out of records"
        fh.writelines(self.lines[self.written : self.written + n])
        fh.flush()
        self.written += n

    def append(self, path: Path, n: int) -> None:
        with open(path, "ab") as fh:
            self.write(fh, n)


def _poll_acting_after_look(watcher: Watcher, act: Callable[[], None]) -> None:
    """One pass of ``watcher`` with ``act`` done between its look at the folder and its reads."""
    look = watcher._look

    def look_then_act() -> dict[str, FileIdentity]:
        now = look()
        act()
        return now

    watcher._look = look_then_act  # type: ignore[method-assign]
    try:
        watcher.poll_once()
    finally:
        del watcher._look  # the method again


@dataclass
class _Watching:
    sh: Shipper
    watcher: Watcher
    folder: Path  # watched
    archive: Path  # beside it, outside
    log_file: Path  # the live log's name
    state: Path


@contextmanager
def _watch(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path, flush: float
) -> Iterator[_Watching]:
    install(es, prefix)
    folder, archive, state = tmp_path / "watched", tmp_path / "archive", tmp_path / "state"
    folder.mkdir()
    archive.mkdir()
    cfg = ShipperConfig(cluster=es_settings, index_prefix=prefix, state_dir=str(state))
    sh = Shipper(cfg, es, flush_interval=flush)
    watcher = Watcher(sh, str(folder), poll_interval=0.01)
    try:
        yield _Watching(sh, watcher, folder, archive, folder / "sysmon.ndjson", state)
    finally:
        watcher.close()
        sh.close()


@pytest.fixture
def watching(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> Iterator[_Watching]:
    with _watch(es, es_settings, prefix, tmp_path, flush=0.05) as w:
        yield w


def test_copytruncate_rewritten_larger_within_one_poll_is_read_from_its_start(
    es: Elasticsearch,
    prefix: str,
    lines: list[bytes],
    watching: _Watching,
) -> None:
    sh, watcher = watching.sh, watching.watcher
    archive, log_file = watching.archive, watching.log_file
    log = _Log(lines)
    rng = random.Random(5)
    log.append(log_file, rng.randint(5, 20))
    watcher.poll_once()
    larger = 0
    for round_ in range(30):
        for _ in range(rng.randint(0, 3)):
            log.append(log_file, rng.randint(1, 8))
            if rng.random() < 0.5:
                watcher.poll_once()
        watcher.poll_once()  # what the copy takes away was read (copytruncate loses the rest)
        old = log_file.stat().st_size
        shutil.copyfile(log_file, archive / f"sysmon.ndjson.{round_}")
        with open(log_file, "r+b") as fh:
            fh.truncate(0)
            if rng.random() < 0.75:  # more than was there, before the watcher looks again
                while fh.tell() <= old:
                    log.write(fh, rng.randint(1, 6))
                larger += 1
            else:
                log.write(fh, 1)
        watcher.poll_once()
    watcher.poll_once()
    sh.sink.flush()
    assert larger > 15
    assert sh.stats.errors == {}
    assert count(es, prefix) == log.written
    assert sh.sink.stats.duplicates == 0  # the rewrite is read from its start, the rest on


def test_files_renamed_moved_out_or_deleted_right_after_appends_are_read_to_their_end(
    es: Elasticsearch,
    prefix: str,
    lines: list[bytes],
    watching: _Watching,
) -> None:
    sh, watcher, folder = watching.sh, watching.watcher, watching.folder
    archive, log_file = watching.archive, watching.log_file
    log = _Log(lines)
    rng = random.Random(9)
    fates = {"renamed": 0, "moved": 0, "deleted": 0}
    for round_ in range(24):
        with open(log_file, "ab") as writer:  # the logger keeps its file open across rotation
            log.write(writer, rng.randint(1, 10))
            watcher.poll_once()  # seen once (a file gone before any poll saw it is never read)
            for _ in range(rng.randint(0, 2)):
                log.write(writer, rng.randint(1, 10))
                if rng.random() < 0.5:
                    watcher.poll_once()
            log.write(writer, rng.randint(1, 10))  # appended, not yet seen
            half = lines[log.written][: rng.randint(1, 40)]
            writer.write(half)  # a line still being written as the file goes
            writer.flush()
            fate = rng.choice(sorted(fates))
            fates[fate] += 1
            if fate == "renamed":
                os.rename(log_file, folder / f"sysmon.ndjson.{round_}")
            elif fate == "moved":
                os.rename(log_file, archive / f"sysmon.ndjson.{round_}")
            else:
                os.unlink(log_file)
            if rng.random() < 0.5:
                watcher.poll_once()  # before the logger finishes: the half line is held back
            writer.write(lines[log.written][len(half) :])
            log.written += 1
            log.write(writer, rng.randint(0, 5))  # the logger writes on before it reopens
        if rng.random() < 0.5:
            log.append(log_file, rng.randint(1, 5))  # the new file
        watcher.poll_once()
    watcher.poll_once()
    sh.sink.flush()
    assert min(fates.values()) >= 4
    assert sh.stats.errors == {}  # no half line was shipped as an error
    assert count(es, prefix) == log.written
    # followed under their new names, not read again from the start
    assert sh.sink.stats.duplicates == 0
    assert watcher.orphans == fates["moved"] + fates["deleted"]
    watcher.orphan_grace = 0
    watcher.poll_once()
    assert watcher.orphans == 0  # quiet: their handles are closed


def test_a_line_left_unfinished_in_a_file_that_left_is_shipped_as_an_error_once_quiet(
    es: Elasticsearch,
    prefix: str,
    lines: list[bytes],
    watching: _Watching,
) -> None:
    sh, watcher, log_file = watching.sh, watching.watcher, watching.log_file
    with open(log_file, "ab") as writer:
        writer.writelines(lines[:30])
        writer.write(lines[30][:25])
        writer.flush()
        watcher.poll_once()
        os.unlink(log_file)
        watcher.poll_once()
        sh.sink.flush()
        assert count(es, prefix) == 30 and watcher.orphans == 1
        watcher.poll_once()  # within the grace nothing more is shipped
        sh.sink.flush()
        assert count(es, prefix) == 30 and sh.stats.errors == {}
    watcher.orphan_grace = 0
    watcher.poll_once()
    sh.sink.flush()
    assert watcher.orphans == 0
    assert sum(sh.stats.errors.values()) == 1
    assert count(es, prefix) == 31  # tagged, not dropped
    es.indices.refresh(index=f"{prefix}-events*")
    hit = es.search(index=f"{prefix}-events*", query={"term": {"event.kind": "pipeline_error"}})["hits"][
        "hits"
    ]
    assert [h["_source"]["log"]["file"]["path"] for h in hit] == [str(log_file)]  # its name, not the handle


def test_ship_reads_a_file_rewritten_larger_since_its_checkpoint_from_the_start(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, lines: list[bytes], tmp_path: Path
) -> None:
    run([*SHIP, "setup", "--index-prefix", prefix], es_settings.url)
    state = tmp_path / "state"
    log_file = tmp_path / "sysmon.ndjson"
    log_file.write_bytes(b"".join(lines[:300]))
    run(ship_args(prefix, state, str(log_file)), es_settings.url)
    assert count(es, prefix) == 300
    with open(log_file, "r+b") as fh:  # the same inode, truncated and rewritten larger
        fh.truncate(0)
        fh.writelines(lines[300:700])
    run(ship_args(prefix, state, str(log_file)), es_settings.url)
    assert count(es, prefix) == 700  # not resumed after 300 records of another content


def test_a_new_file_under_a_name_whose_last_read_awaits_answers_keeps_its_own_count(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, lines: list[bytes], tmp_path: Path
) -> None:
    with _watch(es, es_settings, prefix, tmp_path, flush=600) as w:  # nothing sent before the next read
        w.log_file.write_bytes(b"".join(lines[:100]))
        w.watcher.poll_once()
        assert w.sh.sink.stats.shipped == 0  # still in the batch, unanswered
        os.rename(w.log_file, w.archive / "sysmon.ndjson.1")
        w.log_file.write_bytes(b"".join(lines[100:110]))
        w.watcher.poll_once()
    assert count(es, prefix) == 110
    cp = CheckpointStore(w.state).load(str(w.log_file))
    assert cp is not None and cp.acked == 10 and cp.done  # not the 100 of the file it replaced


def test_a_name_rotated_between_the_look_and_the_read_is_read_through_the_handle(
    es: Elasticsearch,
    prefix: str,
    lines: list[bytes],
    watching: _Watching,
) -> None:
    """logrotate renames (or moves, or deletes) the log and the logger reopens its name while a
    pass is between stat'ing the folder and reading: the pass reads the file it stat'ed (through
    its handle), the new file under the name is read from its start, the watch goes on."""
    sh, watcher, folder = watching.sh, watching.watcher, watching.folder
    archive, log_file = watching.archive, watching.log_file
    log = _Log(lines)
    log.append(log_file, 12)
    watcher.poll_once()
    fates = ["renamed", "moved", "deleted", "renamed, no new file", "moved, no new file"]
    for round_, fate in enumerate(fates):
        with open(log_file, "ab") as writer:
            log.write(writer, 7)  # appended: the next look sees the file grown

            def rotate(fate: str = fate, round_: int = round_) -> None:
                if fate.startswith("renamed"):
                    os.rename(log_file, folder / f"sysmon.ndjson.{round_}")
                elif fate.startswith("moved"):
                    os.rename(log_file, archive / f"sysmon.ndjson.{round_}")
                else:
                    os.unlink(log_file)
                if "no new file" not in fate:
                    log.append(log_file, 5)  # the logger reopened its name at once

            _poll_acting_after_look(watcher, rotate)
            log.write(writer, 3)  # the old handle is written on
        watcher.poll_once()
        if not log_file.exists():
            log.append(log_file, 4)
        watcher.poll_once()
    sh.sink.flush()
    assert sh.stats.errors == {}
    assert count(es, prefix) == log.written
    assert sh.sink.stats.duplicates == 0


def test_a_file_that_cannot_be_read_is_counted_and_the_watch_goes_on(
    es: Elasticsearch,
    prefix: str,
    lines: list[bytes],
    watching: _Watching,
) -> None:
    """Without handles (``max_handles`` 0) a file deleted between the look and the read cannot
    be read: that is an error of the run, not the end of the watch."""
    sh, watcher, folder = watching.sh, watching.watcher, watching.folder
    watcher.max_handles = 0
    doomed = folder / "doomed.ndjson"
    doomed.write_bytes(b"".join(lines[:5]))
    watching.log_file.write_bytes(b"".join(lines[5:25]))
    _poll_acting_after_look(watcher, lambda: doomed.unlink(missing_ok=True))
    watcher.poll_once()
    sh.sink.flush()
    assert count(es, prefix) == 20
    assert sh.stats.errors == {"unreadable_source": 1}
    assert "doomed.ndjson" in sh.stats.error_samples[0] and "cannot stat" in sh.stats.error_samples[0]
