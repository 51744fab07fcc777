"""Dead letters: documents the cluster rejected for what they hold (a mapping conflict, a value
it cannot parse), one NDJSON line each with the reason, the index and ``_id`` they were sent to,
and the document as sent, so that ``sysmon-ship replay`` can send them again unchanged.

The file is private (0600: dead letters hold whole events — users, command lines) and held with
a shared lock: ``replay`` locks it exclusively and may replace or remove it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import IO, Any

import orjson

from shipper.chunks import Ack, now_iso
from shipper.redact import mask_text


def error_fields(error: Any) -> tuple[str, str]:
    """An item error's type and reason (with its cause), secrets masked: the cluster quotes the
    value it could not parse, and a command line may hold a URL with a password. (The document
    itself stays as it was: it is the event, and a replay must send it unchanged.)"""
    if not isinstance(error, dict):
        return "error", mask_text(str(error))
    etype = str(error.get("type", "error"))
    reason = str(error.get("reason", ""))
    caused = error.get("caused_by")
    if isinstance(caused, dict) and caused.get("reason"):
        reason += f" (caused by {caused.get('type')}: {caused.get('reason')})"
    return etype, mask_text(reason)


def open_dead_letters(path: Path) -> IO[bytes]:
    """Open ``path`` for appending, 0600, with a shared lock; the file locked must still be the
    one at ``path`` (a replay may have replaced it while we waited)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # a file left by an older version is tightened too
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return os.fdopen(fd, "ab")
        except FileNotFoundError:
            pass
        os.close(fd)  # replaced or removed while we waited for the lock: open the new one


class DeadLetters:
    """The dead-letter file, opened on the first letter; thread-safe (bulk workers write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None
        self._lock = threading.Lock()

    def write(self, item: bytes, ack: Ack, status: int, error: Any) -> None:
        """One letter for ``item`` (its action and document lines) refused with ``error``."""
        cut = item.index(b"\n")
        action = orjson.loads(item[:cut])["create"]
        source, seq = ack
        etype, reason = error_fields(error)
        line = orjson.dumps(
            {
                "status": status,
                "error": {"type": etype, "reason": reason},
                "index": action["_index"],
                "_id": action["_id"],
                "source": source,
                "seq": seq,
                "dead_lettered_at": now_iso(),
                "document": orjson.Fragment(item[cut + 1 : -1]),
            }
        )
        with self._lock:
            if self._fh is None:
                self._fh = open_dead_letters(self.path)
            self._fh.write(line + b"\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
