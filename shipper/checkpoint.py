"""Resume state per source: which file (path, size, mtime, inode), how many of its items are
acknowledged contiguously from the start, and whether it is done. For line-based sources also a
resume point at or below that watermark — ``offset`` (bytes), ``offset_line`` and
``offset_seq``: the end of record number ``offset_seq`` — so a resume reads on from there
instead of reading the file from its start and skipping ``acked`` records (checkpoints written
before these fields existed load with ``offset=None`` and resume by count).

One JSON file per source under ``<state_dir>/checkpoints/``, written atomically (temporary file
in the same folder, renamed over the old one), so a crash leaves the old or the new state, never
a torn one. A shipping run writes them without an fsync each and makes a whole round durable
with one fsync of the folder (an archive of thousands of small files would otherwise spend more
time in fsync than shipping): a checkpoint that a power cut loses or leaves older only makes the
next run read those records again, and the deterministic ``_id`` turns them into duplicates. It
is never ahead of what the cluster acknowledged, which is what would lose events.

Only acknowledged items count, in the order they were read: the sink hands its results back in
that order whatever order the requests complete in, and :class:`Watermark` advances only over a
contiguous run from the start. A rerun may therefore send a few items again — harmless, they
come back as 409 duplicates.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import orjson

VERSION = 1
Decision = Literal["new", "done", "resume", "restart"]


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a line-based source can be read on from: just after record ``seq``, which ends at
    byte ``offset`` before line ``line``. The records are numbered on from ``seq + 1``."""

    offset: int
    line: int
    seq: int


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "sysmon-detect"


@dataclass(frozen=True)
class FileIdentity:
    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: str) -> FileIdentity:
        st = os.stat(path)
        return cls.of_stat(path, st)

    @classmethod
    def of_stat(cls, path: str, st: os.stat_result) -> FileIdentity:
        return cls(os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


#: Bytes of a file's head that tell one content from another (as Filebeat's fingerprint): a file
#: truncated and rewritten larger between two looks keeps its inode and grows, and only its head
#: says that it holds something else now.
HEAD_BYTES = 1024


@dataclass(frozen=True)
class Head:
    """The first ``length`` bytes of a file (at most :data:`HEAD_BYTES`), by their digest."""

    length: int
    digest: str

    @classmethod
    def of(cls, where: str | int, length: int = HEAD_BYTES) -> Head | None:
        """The head of a file now, by path or open descriptor (whose offset is left alone):
        shorter when the file is; None when it cannot be read."""
        try:
            if isinstance(where, int):
                data = os.pread(where, length, 0)
            else:
                with open(where, "rb") as fh:
                    data = fh.read(length)
        except OSError:
            return None
        return cls(len(data), hashlib.blake2b(data, digest_size=16).hexdigest())

    def still(self, where: str | int) -> bool:
        """Whether the file (path or descriptor) still starts with these bytes (True when it
        cannot be read: the caller's other checks decide)."""
        if self.length == 0:
            return True
        now = Head.of(where, self.length)
        return now is None or now == self


@dataclass(frozen=True)
class Checkpoint:
    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    acked: int = 0
    done: bool = False
    updated: float = 0.0
    version: int = VERSION
    offset: int | None = None
    offset_line: int = 1
    offset_seq: int = 0
    #: the file's head when it was read (``Head``): a rewritten file is read from the start
    head_length: int = 0
    head_digest: str | None = None

    @classmethod
    def start(cls, ident: FileIdentity) -> Checkpoint:
        return cls(ident.path, ident.size, ident.mtime_ns, ident.inode, ident.device)

    def identity(self) -> FileIdentity:
        return FileIdentity(self.path, self.size, self.mtime_ns, self.inode, self.device)

    def head(self) -> Head | None:
        return Head(self.head_length, self.head_digest) if self.head_digest is not None else None


def decide(previous: Checkpoint | None, now: FileIdentity, head_kept: bool = True) -> tuple[Decision, int]:
    """What to do with a source given its last checkpoint: ``(decision, items to skip)``.

    - unchanged and done → skip it;
    - same file (same inode and device) that is the same size or grew → resume after the
      acknowledged items (appended records come after them);
    - a different inode, a file that shrank, or one whose head is no longer the one read
      (``head_kept`` False: truncated and rewritten larger) → start over (duplicates harmless).
    """
    if previous is None:
        return "new", 0
    same_file = previous.inode == now.inode and previous.device == now.device
    if not same_file or now.size < previous.size or not head_kept:
        return "restart", 0
    unchanged = now.size == previous.size and now.mtime_ns == previous.mtime_ns
    if unchanged and previous.done:
        return "done", previous.acked
    return "resume", previous.acked


def resume_point(previous: Checkpoint | None, now: FileIdentity) -> ResumePoint | None:
    """Where a resumed read of a line-based source may start: the checkpoint's resume point
    when the file is the same one (same inode and device), not shorter than that offset, and
    the point is at or below the acknowledged watermark; None (read from the start, skipping by
    count) otherwise."""
    if previous is None or previous.offset is None:
        return None
    if previous.inode != now.inode or previous.device != now.device or now.size < previous.size:
        return None
    if previous.offset > now.size or not 0 <= previous.offset_seq <= previous.acked:
        return None
    if previous.offset_line < 1 or previous.offset < 0:
        return None
    return ResumePoint(previous.offset, previous.offset_line, previous.offset_seq)


#: A half-written checkpoint older than this was left by a killed shipper (a live writer renames
#: its temporary file within milliseconds), so opening the store removes it.
STALE_TMP_SECONDS = 600.0


class CheckpointStore:
    def __init__(self, state_dir: str | Path) -> None:
        self.root = Path(state_dir) / "checkpoints"
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_tmp()

    def _remove_stale_tmp(self) -> None:
        cutoff = time.time() - STALE_TMP_SECONDS
        for tmp in self.root.glob(".tmp-*.json"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
            except OSError:
                pass  # another shipper removed or renamed it

    def _file(self, path: str) -> Path:
        key = hashlib.sha256(os.path.abspath(path).encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return self.root / f"{key}.json"

    def load(self, path: str) -> Checkpoint | None:
        try:
            data: Any = orjson.loads(self._file(path).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return None
        try:
            cp = Checkpoint(**data)
        except TypeError:
            return None
        return cp if cp.path == os.path.abspath(path) else None

    def save(self, cp: Checkpoint, sync: bool = True) -> None:
        """Write ``cp`` atomically; ``sync``: also durably (fsync of the file and the folder),
        else call :meth:`sync` after a batch of saves."""
        target = self._file(cp.path)
        cp = replace(cp, updated=time.time())
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(orjson.dumps(asdict(cp), option=orjson.OPT_INDENT_2))
                if sync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if sync:
            self.sync()

    def sync(self) -> None:
        """Make the renames done so far durable (one fsync of the folder)."""
        dfd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def forget(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._file(path).unlink()

    def all(self) -> list[Checkpoint]:
        out = []
        for f in sorted(self.root.glob("*.json")):
            try:
                data = orjson.loads(f.read_bytes())
                out.append(Checkpoint(**data))
            except (orjson.JSONDecodeError, TypeError):
                continue
        return out


class Watermark:
    """Contiguous acknowledgement per source: ``acked`` is the largest n such that records
    1..n are all done.

    The sink delivers acknowledgements in the order the records were added, so each range
    starts at or below ``acked + 1`` (one that ends at or below ``acked`` is an earlier read's,
    already counted). One that starts beyond would step over records never acknowledged: it is
    left out (``gaps`` counts those), so the checkpoint is never ahead."""

    __slots__ = ("acked", "gaps")

    def __init__(self, start: int = 0) -> None:
        self.acked = start
        self.gaps = 0

    def add(self, first: int, last: int) -> int:
        if first > self.acked + 1:
            self.gaps += 1
        elif last > self.acked:
            self.acked = last
        return self.acked
