"""``sysmon-ship watch FOLDER``: ship new files as they appear and follow growing logs.

Polling (no inotify dependency): every ``poll_interval`` the folder is listed and every file in it
is stat'ed. A file is known by its inode, not its name:

- same inode, grown, same head (its first :data:`~shipper.checkpoint.HEAD_BYTES`) → read on from
  where the previous pass stopped: a grown line-based file (JSON lines, event XML, rendered text)
  is opened at the end offset of the last document sent, so a pass costs what was appended;
- same inode but shorter, or grown with another head (copytruncate, then more written than was
  there before the next look) → read from the start;
- the inode under another name in the folder (rotated ``app.log`` → ``app.log.1``) → followed
  under its new name, its checkpoint copied to that name;
- the inode gone from the folder (rotated out, deleted) → read to its end through the handle
  this process holds on it (``/proc/self/fd/N``), then followed there until it has been quiet for
  ``orphan_grace`` seconds, and closed.

Every read goes through the handle on the inode that was stat'ed, so a name rotated between the
look and the read is never read with another file's skip. A file that cannot be read is counted
(``unreadable_source``) and the watch goes on.

Duplicates are harmless (deterministic ``_id`` + ``create``). A read error on the very last record
of a pass is a line still being written: it is held back (not shipped, not acknowledged) until the
file grows. A partial batch is sent once its oldest document waited ``flush_interval`` seconds.
Handles are held for the ``max_handles`` most recently changed files: a quiet file whose handle
was given up, and that then leaves the folder, was already read to its end. The stop event (set by
SIGINT/SIGTERM) ends the loop; the caller's ``Shipper.close`` flushes and saves the checkpoints.
A file that left the folder and was not yet read to its end when the watcher stops is not read
after the restart: its name is gone.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from dataclasses import dataclass, replace

from shipper.checkpoint import FileIdentity, Head, ResumePoint
from shipper.errors import InputError
from shipper.pipeline import expand_inputs
from shipper.ship import Shipper

#: Seconds a file that left the folder is still followed after it last grew.
ORPHAN_GRACE = 300.0
#: Open handles kept at most (fewer when the process may open fewer files).
MAX_HANDLES = 1024
_FD_ROOT = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"


@dataclass
class _Seen:
    ident: FileIdentity
    records: int  # records consumed (and sent or acknowledged) so far
    held_back: bool
    point: ResumePoint | None = None  # where to read on from
    head: Head | None = None  # the file's head when it was last read
    fd: int | None = None  # a handle on it, to read it to the end once it leaves the folder
    changed: float = 0.0  # monotonic time it was last read

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def _raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one; returns the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class Watcher:
    def __init__(
        self,
        shipper: Shipper,
        folder: str,
        *,
        poll_interval: float = 1.0,
        orphan_grace: float = ORPHAN_GRACE,
        max_handles: int = MAX_HANDLES,
    ) -> None:
        if not os.path.isdir(folder):
            raise InputError("not a folder", source=folder)
        self.shipper = shipper
        self.folder = folder
        self.poll_interval = poll_interval
        self.orphan_grace = orphan_grace
        # leave room for the client's sockets, the checkpoint and dead-letter files, readers
        self.max_handles = max(0, min(max_handles, _raise_open_files_limit() // 2 - 64))
        self._seen: dict[str, _Seen] = {}
        self._orphans: list[_Seen] = []
        self.passes = 0

    @property
    def orphans(self) -> int:
        """Files that left the folder and are still followed through their handles."""
        return len(self._orphans)

    def poll_once(self) -> int:
        """One pass over the folder; returns the number of files read."""
        sh = self.shipper
        now = self._look()
        read = 0
        for path, ident in now.items():
            if sh.stop.is_set():
                break
            seen = self._seen.get(path)
            if seen is not None and seen.ident == ident:
                # Unchanged. A held-back last record (a line still being written) stays held
                # until the file grows: shipping it now as an error would skip its complete form.
                continue
            self._read(path, ident, seen, read + 1)
            read += 1
            sh.sink.maybe_flush()
        read += self._drain_orphans()
        self._limit_handles()
        sh.sink.maybe_flush()
        self.passes += 1
        return read

    def _look(self) -> dict[str, FileIdentity]:
        """Stat the folder's files; what was seen follows its inode to a new name, or becomes an
        orphan when the inode left the folder."""
        now: dict[str, FileIdentity] = {}
        for path in expand_inputs([self.folder]):
            try:
                now[path] = FileIdentity.of(path)
            except OSError:
                continue  # vanished between listing and stat
        where = {(i.device, i.inode): p for p, i in now.items()}
        moved: dict[str, _Seen] = {}
        for path, seen in self._seen.items():
            target = where.get((seen.ident.device, seen.ident.inode))
            if target is None:
                self._orphan(seen)
                continue
            if target != path:
                self._copy_checkpoint(path, target, seen.ident)
                seen.ident = replace(seen.ident, path=now[target].path)
            moved[target] = seen
        self._seen = moved
        return now

    def _copy_checkpoint(self, old: str, new: str, ident: FileIdentity) -> None:
        """A file renamed in the folder resumes under its new name after a restart too."""
        store = self.shipper.store
        cp = store.load(old)
        if cp is not None and (cp.inode, cp.device) == (ident.inode, ident.device):
            with contextlib.suppress(OSError):
                store.save(replace(cp, path=os.path.abspath(new)), sync=False)

    def _orphan(self, seen: _Seen) -> None:
        if seen.fd is None:
            return  # no handle: it was quiet, and read to its end, when the handle was given up
        seen.changed = time.monotonic()
        self._orphans.append(seen)

    def _read(self, path: str, ident: FileIdentity, seen: _Seen | None, index: int) -> None:
        """Read one new or changed file (see the module's docstring for from where)."""
        sh = self.shipper
        skip: int | None = None  # first sight: the checkpoint decides (resume after a restart)
        start: ResumePoint | None = None
        fd = seen.fd if seen is not None else None
        if fd is None and self.max_handles > 0:
            fd = self._open(path, ident)
            if fd is None:
                return  # renamed or replaced since the look: the next look follows it
        where = fd if fd is not None else path
        if seen is not None:  # the same inode (``_look``)
            if ident.size >= seen.ident.size and (seen.head is None or seen.head.still(where)):
                skip, start = seen.records, seen.point  # grew: read on after what was sent
            else:
                skip = 0  # truncated, or rewritten larger: start over
        head = Head.of(where)  # before the read
        sh.progress.source_started(path, index, index)
        # Through the handle: the inode stat'ed, even if the name was rotated since the look.
        through = f"{_FD_ROOT}/{fd}" if fd is not None else None
        try:
            done = sh.ship_source(path, skip=skip, start=start, hold_last_error=True, through=through)
        except InputError as exc:
            # One unreadable file (a form no reader knows, gone without a handle) must not stop
            # the watch: counted with its reason, and not tried again until it changes.
            sh.stats.error("unreadable_source", str(exc))
            self._seen[path] = _Seen(ident, 0, False, None, head, fd, time.monotonic())
            return
        point = sh.read_point(path)
        self._seen[path] = _Seen(ident, done.records, done.held_back, point, head, fd, time.monotonic())
        sh.forget_source(path)

    @staticmethod
    def _open(path: str, ident: FileIdentity) -> int | None:
        """A handle on ``path`` if it is still the file stat'ed."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        st = os.fstat(fd)
        if (st.st_ino, st.st_dev) != (ident.inode, ident.device):
            os.close(fd)
            return None
        return fd

    def _drain_orphans(self) -> int:
        """Read on what was appended to files that left the folder; close the quiet ones."""
        read = 0
        kept: list[_Seen] = []
        for seen in self._orphans:
            if self.shipper.stop.is_set():
                kept.append(seen)
                continue
            assert seen.fd is not None
            try:
                st = os.fstat(seen.fd)
            except OSError:
                seen.close()
                continue
            grown = st.st_size != seen.ident.size or st.st_mtime_ns != seen.ident.mtime_ns
            quiet = time.monotonic() - seen.changed >= self.orphan_grace
            if grown or (quiet and seen.held_back):
                self._read_orphan(seen, st, final=quiet and not grown)
                read += 1
            if quiet and not grown:
                seen.close()
            else:
                kept.append(seen)
        self._orphans = kept
        return read

    def _read_orphan(self, seen: _Seen, st: os.stat_result, *, final: bool) -> None:
        """Read an orphan through its handle, as its old name. ``final``: its last record is
        shipped even when it does not parse (nothing will complete it any more)."""
        sh = self.shipper
        assert seen.fd is not None
        via = f"{_FD_ROOT}/{seen.fd}"
        ident = FileIdentity.of_stat(seen.ident.path, st)
        if ident.size >= seen.ident.size:
            skip, start = seen.records, seen.point
        else:
            skip, start = 0, None  # truncated
        done = sh.ship_source(
            via,
            skip=skip,
            start=start,
            hold_last_error=not final,
            persist=False,
            label=seen.ident.path,
        )
        point = sh.read_point(via)
        sh.forget_source(via)
        seen.ident = ident
        seen.records, seen.held_back, seen.point = done.records, done.held_back, point
        seen.changed = time.monotonic()

    def _limit_handles(self) -> None:
        """Keep handles on the most recently read files only."""
        held = [s for s in self._seen.values() if s.fd is not None]
        if len(held) <= self.max_handles:
            return
        held.sort(key=lambda s: s.changed)
        for seen in held[: len(held) - self.max_handles]:
            seen.close()

    def close(self) -> None:
        """Close every handle (the files are read no further)."""
        for seen in [*self._seen.values(), *self._orphans]:
            seen.close()
        self._orphans = []

    def run(self) -> None:
        sh = self.shipper
        flush_interval = sh.sink.opts.flush_interval or 1.0
        try:
            while not sh.stop.is_set():
                began = time.monotonic()
                self.poll_once()
                # Between passes keep the flush bound: send partial batches once they are old enough.
                while not sh.stop.is_set():
                    remaining = self.poll_interval - (time.monotonic() - began)
                    if remaining <= 0:
                        break
                    sh.stop.wait(min(remaining, flush_interval / 4))
                    sh.sink.maybe_flush()
        finally:
            self.close()
