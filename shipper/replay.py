"""``sysmon-ship replay``: send a dead-letter file's documents again once their cause is fixed.

Each line goes back to the index and ``_id`` it was refused from, through the same sink (so
``event.ingested`` is stamped anew and a document already in the cluster is a 409 duplicate).
Afterwards the file holds only what is still refused (with the new reason) and the lines that
could not be read, verbatim; when nothing is left it is removed. A refusal that stops shipping
(rights, a block, the node away) leaves the file as it was.

The file is locked exclusively while it is replayed; a shipper writing dead letters holds a
shared lock on it, so the two never interleave.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from elasticsearch import Elasticsearch

from shipper.errors import InputError
from shipper.sink import BulkOptions, BulkSink


@dataclass
class ReplaySummary:
    path: str
    documents: int = 0
    shipped: int = 0
    duplicates: int = 0
    rejected: int = 0
    unreadable: int = 0
    problems: list[str] = field(default_factory=list)  # "line N: why", the first few
    removed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "documents": self.documents,
            "shipped": self.shipped,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "unreadable": self.unreadable,
            "removed": self.removed,
        }

    def line(self) -> str:
        left = "removed" if self.removed else f"kept with {self.rejected + self.unreadable} lines"
        return (
            f"replay {self.path}: documents={self.documents} shipped={self.shipped}"
            f" duplicates={self.duplicates} rejected={self.rejected} unreadable={self.unreadable}; {left}"
        )


@dataclass(frozen=True, slots=True)
class _Letter:
    index: str
    doc_id: str
    document: dict[str, Any]
    source: str
    seq: int


def _parse(line: bytes, source: str, number: int) -> _Letter:
    where = {"source": source, "position": f"line {number}"}
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc})", **where) from None
    if not isinstance(d, dict):
        raise InputError("not a dead letter (a JSON object)", **where)
    index, doc_id, doc = d.get("index"), d.get("_id"), d.get("document")
    if not isinstance(index, str) or not index or not isinstance(doc_id, str) or not isinstance(doc, dict):
        raise InputError("a dead letter needs index, _id and document", **where)
    seq = d.get("seq")
    return _Letter(index, doc_id, doc, str(d.get("source") or ""), seq if isinstance(seq, int) else number)


def _lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(fh, start=1):
        line = raw.rstrip(b"\r\n")
        if line.strip():
            yield number, line


def _write_private(path: Path, parts: list[bytes]) -> None:
    """Replace ``path`` with ``parts`` atomically, readable by its owner only."""
    tmp = path.with_name(f".{path.name}.replay-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        for part in parts:
            out.write(part)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def replay(client: Elasticsearch, path: str | Path, options: BulkOptions | None = None) -> ReplaySummary:
    """Resend the dead letters in ``path``; raises :class:`~shipper.sink.ShipError` (file kept
    as it was) when the cluster stops accepting writes."""
    path = Path(path)
    summary = ReplaySummary(str(path))
    again = path.with_name(f".{path.name}.rejected-{os.getpid()}")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - held open for the lock
    except OSError as exc:
        raise InputError(f"cannot open the dead-letter file: {exc.strerror}", source=str(path)) from None
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy = "in use by a running shipper: replay it once that run ends"
            raise InputError(busy, source=str(path)) from None
        kept: list[bytes] = []
        try:
            with BulkSink(client, options=options, dead_letter_path=again) as sink:
                for number, line in _lines(fh):
                    try:
                        letter = _parse(line, str(path), number)
                    except InputError as exc:
                        summary.unreadable += 1
                        if len(summary.problems) < 10:
                            summary.problems.append(str(exc))
                        kept.append(line + b"\n")
                        continue
                    summary.documents += 1
                    sink.add(letter.document, letter.index, letter.doc_id, (letter.source, letter.seq))
            stats = sink.stats
            summary.shipped = stats.shipped
            summary.duplicates = stats.duplicates
            summary.rejected = stats.dead_lettered
            if again.exists():
                kept.append(again.read_bytes())
        finally:
            again.unlink(missing_ok=True)
        if kept:
            _write_private(path, kept)
        else:
            path.unlink()
            summary.removed = True
    return summary
