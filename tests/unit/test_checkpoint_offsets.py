"""Checkpoint resume points: saved with the watermark, used only for the same, not shorter
file, and checkpoint files written before the fields existed still load (resume by count)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from shipper.checkpoint import Checkpoint, CheckpointStore, FileIdentity, ResumePoint, decide, resume_point


def _file(tmp_path: Path) -> Path:
    f = tmp_path / "a.ndjson"
    f.write_bytes(b'{"a": 1}\n' * 10)
    return f


def test_point_round_trips_and_is_used_for_the_same_grown_file(tmp_path: Path) -> None:
    f = _file(tmp_path)
    store = CheckpointStore(tmp_path / "state")
    cp = replace(Checkpoint.start(FileIdentity.of(str(f))), acked=7, offset=54, offset_line=7, offset_seq=6)
    store.save(cp)
    loaded = store.load(str(f))
    assert loaded is not None and (loaded.offset, loaded.offset_line, loaded.offset_seq) == (54, 7, 6)
    assert resume_point(loaded, FileIdentity.of(str(f))) == ResumePoint(54, 7, 6)
    with open(f, "ab") as fh:
        fh.write(b'{"a": 2}\n')
    grown = FileIdentity.of(str(f))
    assert decide(loaded, grown) == ("resume", 7)
    assert resume_point(loaded, grown) == ResumePoint(54, 7, 6)


def test_no_point_after_truncation_rotation_or_a_bad_point(tmp_path: Path) -> None:
    f = _file(tmp_path)
    cp = replace(Checkpoint.start(FileIdentity.of(str(f))), acked=7, offset=54, offset_line=7, offset_seq=6)
    assert resume_point(replace(cp, offset_seq=8), FileIdentity.of(str(f))) is None  # above the watermark
    assert resume_point(replace(cp, offset=10_000), FileIdentity.of(str(f))) is None  # past the end
    assert resume_point(None, FileIdentity.of(str(f))) is None
    f.write_bytes(b'{"a": 1}\n')  # truncated (same inode)
    assert resume_point(cp, FileIdentity.of(str(f))) is None
    os.rename(f, tmp_path / "old")
    _file(tmp_path)  # rotated: a new inode of the same size
    assert resume_point(cp, FileIdentity.of(str(f))) is None


def test_old_checkpoint_without_a_point_loads_and_resumes_by_count(tmp_path: Path) -> None:
    f = _file(tmp_path)
    store = CheckpointStore(tmp_path / "state")
    ident = FileIdentity.of(str(f))
    old = {
        "path": ident.path,
        "size": ident.size,
        "mtime_ns": ident.mtime_ns,
        "inode": ident.inode,
        "device": ident.device,
        "acked": 4,
        "done": False,
        "updated": 1.0,
        "version": 1,
    }
    store.save(Checkpoint.start(ident))  # to learn the file name the store uses
    (target,) = [f for f in (tmp_path / "state" / "checkpoints").glob("*.json") if not f.name.startswith(".")]
    target.write_text(json.dumps(old))
    loaded = store.load(str(f))
    assert loaded is not None and loaded.acked == 4 and loaded.offset is None
    assert decide(loaded, ident) == ("resume", 4)
    assert resume_point(loaded, ident) is None
    assert [cp.acked for cp in store.all()] == [4]


def test_stale_temporary_checkpoints_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    import os
    import time

    from shipper.checkpoint import STALE_TMP_SECONDS, CheckpointStore

    root = tmp_path / "checkpoints"
    root.mkdir()
    stale, fresh = root / ".tmp-old.json", root / ".tmp-new.json"
    stale.write_text("{")
    fresh.write_text("{")
    old = time.time() - STALE_TMP_SECONDS - 5
    os.utime(stale, (old, old))
    CheckpointStore(tmp_path)
    assert not stale.exists() and fresh.exists()


def test_resume_point_is_the_last_document_under_the_watermark() -> None:
    """Resume points are kept per run of documents (one per document sent alone); the point
    is the end of the last document at or below the watermark, within a run too."""
    from shipper.checkpoint import Checkpoint, Watermark
    from shipper.checkpointing import SourceState as _Source

    st = _Source("f", Checkpoint(path="f", size=0, mtime_ns=0, inode=0, device=0), Watermark())
    st.ends.append((1, [10, 20, 30], [2, 3, 4]))  # records 1-3
    st.ends.append((5, [50], [6]))  # record 5 alone (4 made no document)
    st.ends.append((6, [60, 70], [7, 8]))
    st.advance_point(0)
    assert st.point is None
    st.advance_point(2)
    assert st.point == ResumePoint(20, 3, 2) and len(st.ends) == 3  # inside the first run
    st.advance_point(4)
    assert st.point == ResumePoint(30, 4, 3) and len(st.ends) == 2  # record 4 has no end of its own
    st.advance_point(6)
    assert st.point == ResumePoint(60, 7, 6) and len(st.ends) == 1
    st.advance_point(100)
    assert st.point == ResumePoint(70, 8, 7) and not st.ends
