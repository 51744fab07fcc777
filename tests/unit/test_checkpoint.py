from __future__ import annotations

import os
import random
import threading
from pathlib import Path

import pytest

from shipper.checkpoint import (
    HEAD_BYTES,
    Checkpoint,
    CheckpointStore,
    FileIdentity,
    Head,
    Watermark,
    decide,
    default_state_dir,
)


def test_watermark_advances_only_over_a_contiguous_run() -> None:
    w = Watermark()
    assert w.add(3, 5) == 0
    assert w.add(7, 9) == 0
    assert w.add(1, 2) == 5
    assert w.add(6, 6) == 9
    assert w.gaps == 0
    assert w.add(1, 4) == 9  # already acknowledged


def test_watermark_out_of_order_from_threads() -> None:
    ranges = [(i, i + 9) for i in range(1, 10_001, 10)]
    random.Random(3).shuffle(ranges)
    w = Watermark()
    threads = [threading.Thread(target=w.add_all, args=(ranges[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert w.acked == 10_000 and w.gaps == 0


def test_watermark_with_overlapping_and_repeated_ranges() -> None:
    rng = random.Random(11)
    for _ in range(200):
        n = rng.randint(1, 300)
        ranges = []
        covered = set()
        while len(covered) < n:  # every item at least once, some ranges overlapping
            a = rng.randint(1, n)
            b = min(n, a + rng.randint(0, 9))
            ranges.append((a, b))
            covered.update(range(a, b + 1))
        rng.shuffle(ranges)
        w = Watermark()
        seen: set[int] = set()
        for a, b in ranges:
            seen.update(range(a, b + 1))
            contiguous = 0
            while contiguous + 1 in seen:
                contiguous += 1
            assert w.add(a, b) == contiguous
        assert w.acked == n and w.gaps == 0


def test_watermark_stays_fast_with_many_ranges_waiting() -> None:
    """A file of all channels shipped with requests in flight: ranges of every stretch of
    records wait above the watermark, each costing the same however many do."""
    w = Watermark()
    ranges = [(i, i) for i in range(2, 200_002)]
    for a, b in reversed(ranges):
        w.add(a, b)
    assert w.gaps == 200_000 and w.acked == 0
    assert w.add(1, 1) == 200_001 and w.gaps == 0


def test_decide(tmp_path: Path) -> None:
    f = tmp_path / "a.ndjson"
    f.write_text("x\n")
    ident = FileIdentity.of(str(f))
    assert decide(None, ident) == ("new", 0)
    done = Checkpoint(**{**Checkpoint.start(ident).__dict__, "acked": 5, "done": True})
    assert decide(done, ident) == ("done", 5)
    partial = Checkpoint(**{**done.__dict__, "done": False})
    assert decide(partial, ident) == ("resume", 5)
    with open(f, "a") as fh:
        fh.write("more\n")
    assert decide(done, FileIdentity.of(str(f))) == ("resume", 5)  # grew: go on after the acked
    f.write_text("")
    assert decide(done, FileIdentity.of(str(f))) == ("restart", 0)  # truncated
    os.rename(f, tmp_path / "old")
    f.write_text("x\nnew file\n")
    assert decide(done, FileIdentity.of(str(f)))[0] == "restart"  # rotated: another inode


def test_a_head_tells_a_grown_file_from_one_rewritten_larger(tmp_path: Path) -> None:
    f = tmp_path / "a.ndjson"
    f.write_bytes(b"first\n")
    head = Head.of(str(f))
    assert head is not None and head.length == 6
    with open(f, "ab") as fh:
        fh.write(b"x" * 3 * HEAD_BYTES)
    assert head.still(str(f))  # appended: the bytes it had are the same
    grown = Head.of(str(f))
    assert grown is not None and grown.length == HEAD_BYTES
    fd = os.open(f, os.O_RDONLY)
    try:
        assert Head.of(fd) == grown and grown.still(fd) and os.lseek(fd, 0, os.SEEK_CUR) == 0
    finally:
        os.close(fd)
    with open(f, "r+b") as fh:  # copytruncate, then more written than before: same inode
        fh.truncate(0)
        fh.write(b"second\n" * 1000)
    assert not head.still(str(f)) and not grown.still(str(f))
    assert Head(0, grown.digest).still(str(f))  # an empty file's head holds for any content
    assert head.still(str(tmp_path / "gone"))  # unreadable: the other checks decide


def test_decide_restarts_a_file_whose_head_changed(tmp_path: Path) -> None:
    f = tmp_path / "a.ndjson"
    f.write_text("x\n")
    ident = FileIdentity.of(str(f))
    head = Head.of(str(f))
    assert head is not None
    cp = Checkpoint(**{**Checkpoint.start(ident).__dict__, "acked": 1, "done": True})
    cp = Checkpoint(**{**cp.__dict__, "head_length": head.length, "head_digest": head.digest})
    assert cp.head() == head
    assert Checkpoint.start(ident).head() is None  # an old checkpoint: no head known
    f.write_text("y\nmore than before\n")
    now = FileIdentity.of(str(f))
    assert decide(cp, now, head_kept=True) == ("resume", 1)
    assert decide(cp, now, head_kept=head.still(str(f))) == ("restart", 0)
    store = CheckpointStore(tmp_path / "state")
    store.save(cp)
    loaded = store.load(str(f))
    assert loaded is not None and loaded.head() == head  # kept across a restart


def test_store_round_trip_is_atomic_and_keyed_by_path(tmp_path: Path) -> None:
    f = tmp_path / "in.xml"
    f.write_text("<x/>")
    store = CheckpointStore(tmp_path / "state")
    assert store.load(str(f)) is None
    cp = Checkpoint.start(FileIdentity.of(str(f)))
    store.save(cp)
    store.save(Checkpoint(**{**cp.__dict__, "acked": 42}))
    loaded = store.load(str(f))
    assert loaded is not None and loaded.acked == 42 and loaded.path == os.path.abspath(f)
    files = list((tmp_path / "state" / "checkpoints").iterdir())
    assert len(files) == 1 and not files[0].name.startswith(".tmp")
    files[0].write_text("{torn")
    assert store.load(str(f)) is None  # unreadable state = start over (duplicates harmless)


def test_default_state_dir_honours_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/tmp/xdg-state")
    assert default_state_dir() == Path("/tmp/xdg-state/sysmon-detect")
