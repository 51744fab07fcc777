"""``sysmon-ship watch FOLDER``: ship new files as they appear and follow growing logs.

Polling (no inotify dependency): every ``poll_interval`` the folder is listed; a file whose size,
modification time or inode changed since the last pass is read again from where the previous pass
stopped (same inode, not shorter), or from the start (rotated: new inode; truncated: shorter) —
duplicates are harmless (deterministic ``_id`` + ``create``). A grown line-based file (JSON lines,
event XML, rendered text) is opened at the end offset of the last document sent, so a pass costs
what was appended, not the whole file. A read error on the very last record
of a pass is a line still being written: it is held back (not shipped, not acknowledged) until the
file grows. A partial batch is sent once its
oldest document waited ``flush_interval`` seconds. The stop event (set by SIGINT/SIGTERM) ends the
loop; the caller's ``Shipper.close`` flushes and saves the checkpoints.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from shipper.checkpoint import FileIdentity
from shipper.errors import InputError
from shipper.pipeline import expand_inputs
from shipper.ship import Shipper


@dataclass
class _Seen:
    ident: FileIdentity
    records: int  # records consumed (and sent or acknowledged) so far
    held_back: bool
    point: tuple[int, int, int] | None = None  # (offset, line, seq) to read on from


class Watcher:
    def __init__(self, shipper: Shipper, folder: str, *, poll_interval: float = 1.0) -> None:
        if not os.path.isdir(folder):
            raise InputError("not a folder", source=folder)
        self.shipper = shipper
        self.folder = folder
        self.poll_interval = poll_interval
        self._seen: dict[str, _Seen] = {}
        self.passes = 0

    def poll_once(self) -> int:
        """One pass over the folder; returns the number of files read."""
        sh = self.shipper
        read = 0
        for path in expand_inputs([self.folder]):
            if sh.stop.is_set():
                break
            try:
                ident = FileIdentity.of(path)
            except OSError:
                continue  # vanished between listing and stat
            seen = self._seen.get(path)
            skip: int | None = None
            start: tuple[int, int, int] | None = None
            if seen is None:
                skip = None  # first sight: the checkpoint decides (resume after a restart)
            elif seen.ident == ident:
                # Unchanged. A held-back last record (a line still being written) stays held
                # until the file grows: shipping it now as an error would skip its complete form.
                continue
            elif (
                ident.inode == seen.ident.inode
                and ident.device == seen.ident.device
                and (ident.size >= seen.ident.size)
            ):
                skip = seen.records  # grew: continue after what this process already sent
                start = seen.point  # ... reading from the end of the last document sent
            else:
                skip = 0  # rotated or truncated: start over
            sh.progress.source_started(path, read + 1, read + 1)
            records, held_back = sh.ship_source(path, skip=skip, start=start, hold_last_error=True)
            self._seen[path] = _Seen(ident, records, held_back, sh.read_point(path))
            sh.forget_source(path)
            read += 1
            sh.sink.maybe_flush()
        sh.sink.maybe_flush()
        self.passes += 1
        return read

    def run(self) -> None:
        sh = self.shipper
        flush_interval = sh.sink.opts.flush_interval or 1.0
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
