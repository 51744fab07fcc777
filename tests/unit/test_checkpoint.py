from __future__ import annotations

import os
import random
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


def test_watermark_advances_over_ranges_in_order() -> None:
    """The sink hands acknowledgements back in the order the records were added: each range
    continues the watermark (or repeats what it covers already)."""
    w = Watermark()
    assert w.add(1, 2) == 2
    assert w.add(3, 5) == 5
    assert w.add(1, 4) == 5  # already acknowledged
    assert w.add(4, 9) == 9  # overlapping: the rest counts
    assert Watermark(10).add(3, 8) == 10  # a resumed source: the earlier read's, already counted
    assert w.gaps == 0


def test_watermark_never_steps_over_records_not_acknowledged() -> None:
    """A range beyond ``acked + 1`` would put the checkpoint ahead of the cluster: it is left
    out, and the watermark goes no further than the records acknowledged without a hole."""
    w = Watermark()
    assert w.add(1, 3) == 3
    assert w.add(7, 9) == 3 and w.gaps == 1
    assert w.add(4, 6) == 6  # 7-9 was left out: not counted afterwards either
    rng = random.Random(11)
    for _ in range(200):
        n = rng.randint(1, 300)
        ranges = []
        while True:
            a = rng.randint(1, n)
            ranges.append((a, min(n, a + rng.randint(0, 9))))
            if rng.random() < 0.02:
                break
        w = Watermark()
        for a, b in ranges:
            before = w.acked
            got = w.add(a, b)
            assert got == (max(before, b) if a <= before + 1 else before)
        covered = {q for a, b in ranges for q in range(a, b + 1)}
        contiguous = 0
        while contiguous + 1 in covered:
            contiguous += 1
        assert w.acked <= contiguous


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
