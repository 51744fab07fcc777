"""Read → filter Sysmon → map to ECS: the one path that ``convert`` and ``ship`` share.

Everything a reader yields is counted: Sysmon events by ID, other providers (skipped), unknown
event IDs (shipped anyway), and errors by kind with where they happened. Bad records become
``pipeline_error`` documents unless ``skip_errors`` asks to count and drop them.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipper.errors import InputError
from shipper.raw import ReadError
from shipper.readers.registry import open_source
from shipper.sysmon.ecs import error_document, to_ecs_and_id
from shipper.sysmon.events import EVENTS

STDIN = "-"
MAX_ERROR_SAMPLES = 50
#: File names inside input folders that are never event logs.
_IGNORED_SUFFIXES = (".md", ".tsv", ".zip", ".gz", ".json.sig", ".sha256")


@dataclass
class Stats:
    """Counts of one run; ``summary`` and ``as_dict`` are what people and scripts read."""

    sources: int = 0
    records: int = 0
    documents: int = 0
    sysmon_by_id: Counter[int] = field(default_factory=Counter)
    other_providers: Counter[str] = field(default_factory=Counter)
    unknown_ids: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    errors_skipped: int = 0
    error_samples: list[str] = field(default_factory=list)

    @property
    def sysmon(self) -> int:
        return sum(self.sysmon_by_id.values())

    def error(self, kind: str, where: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(where)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "records": self.records,
            "documents": self.documents,
            "sysmon_events": self.sysmon,
            "sysmon_by_id": {str(k): v for k, v in sorted(self.sysmon_by_id.items())},
            "other_providers": dict(sorted(self.other_providers.items())),
            "unknown_event_ids": {str(k): v for k, v in sorted(self.unknown_ids.items())},
            "errors": dict(sorted(self.errors.items())),
            "errors_skipped": self.errors_skipped,
            "error_samples": list(self.error_samples),
        }

    def summary(self) -> str:
        by_id = " ".join(f"{k}={v}" for k, v in sorted(self.sysmon_by_id.items())) or "none"
        parts = [
            f"sources={self.sources}",
            f"records={self.records}",
            f"sysmon={self.sysmon}",
            f"documents={self.documents}",
            f"other_providers={sum(self.other_providers.values())}",
            f"unknown_ids={sum(self.unknown_ids.values())}",
            f"errors={sum(self.errors.values())}",
            f"errors_skipped={self.errors_skipped}",
        ]
        return " ".join(parts) + f" by_id: {by_id}"


@dataclass(frozen=True, slots=True)
class Item:
    """One document ready for the sink. ``seq`` is the 1-based ordinal of the record within its
    source, over everything the reader yielded (other providers included), so ``skip`` can
    resume a source after its last acknowledged record."""

    doc: dict[str, Any]
    doc_id: str
    index_suffix: str
    source: str
    seq: int
    position: str


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Files, folders (recursively, sorted), globs and ``-`` → a list of sources, in order,
    each once. A name that matches nothing is an error naming it."""
    out: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = path if path == STDIN else os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            out.append(path)

    for item in inputs:
        if item == STDIN:
            add(STDIN)
            continue
        p = Path(item)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    if (
                        name.startswith(".")
                        or name.lower().endswith(_IGNORED_SUFFIXES)
                        or name.startswith("LICENSE")
                    ):
                        continue
                    add(os.path.join(root, name))
        elif p.exists():
            add(str(p))
        else:
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise InputError("no such file, folder or glob match", source=item)
            for m in matches:
                if Path(m).is_dir():
                    for sub in expand_inputs([m]):
                        add(sub)
                else:
                    add(m)
    return out


def index_suffix(timestamp: str | None) -> str | None:
    """``2024-03-05T…`` → ``2024.03`` (the monthly index of the event's own time)."""
    if not timestamp or len(timestamp) < 7 or timestamp[4] != "-":
        return None
    return f"{timestamp[0:4]}.{timestamp[5:7]}"


def _fallback_time(source: str) -> str:
    """The time for an error document with no event time of its own: the file's modification
    time (stable when the same file is shipped again), or now for standard input."""
    try:
        ts = os.stat(source).st_mtime if source != STDIN else None
    except OSError:
        ts = None
    when = datetime.fromtimestamp(ts, UTC) if ts is not None else datetime.now(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _error_id(err: ReadError) -> str:
    material = "\x1f".join(("read-error", os.path.basename(err.source), err.position, err.kind, err.message))
    return hashlib.blake2b(material.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()


def iter_documents(
    paths: Sequence[str],
    fmt: str | None = None,
    evtx_backend: str = "auto",
    host: str | None = None,
    skip_errors: bool = False,
    stats: Stats | None = None,
    skip: Mapping[str, int] | None = None,
) -> Iterator[Item]:
    """Stream ECS documents from ``paths`` (already expanded), counting everything in ``stats``."""
    st = stats if stats is not None else Stats()
    for source in paths:
        st.sources += 1
        already = (skip or {}).get(source, 0)
        last_time: str | None = None
        seq = 0
        for rec in open_source(source, fmt, evtx_backend=evtx_backend, host=host):  # type: ignore[arg-type]
            seq += 1
            st.records += 1
            if seq <= already:
                continue
            if isinstance(rec, ReadError):
                where = f"{rec.source} ({rec.position}): {rec.message}"
                st.error(rec.kind, where)
                if skip_errors:
                    st.errors_skipped += 1
                    continue
                when = last_time or _fallback_time(source)
                doc = error_document(rec.kind, rec.message, rec.source, rec.position, rec.original, when=when)
                st.documents += 1
                yield Item(
                    doc,
                    _error_id(rec),
                    index_suffix(doc.get("@timestamp")) or when[:7].replace("-", "."),
                    source,
                    seq,
                    rec.position,
                )
                continue
            if not rec.is_sysmon:
                st.other_providers[rec.provider or "(unknown)"] += 1
                continue
            st.sysmon_by_id[rec.event_id] += 1
            if rec.event_id not in EVENTS:
                st.unknown_ids[rec.event_id] += 1
            doc, doc_id = to_ecs_and_id(rec)
            event = doc.get("event") or {}
            if event.get("kind") == "pipeline_error":
                msg = (doc.get("error") or {}).get("message", "mapping error")
                st.error("mapping", f"{rec.source} ({rec.position}): {msg}")
                if skip_errors:
                    st.errors_skipped += 1
                    continue
            ts = doc.get("@timestamp")
            suffix = index_suffix(ts)
            if suffix is None:
                ts = last_time or _fallback_time(source)
                doc["@timestamp"] = ts
                suffix = index_suffix(ts) or "unknown"
            else:
                last_time = ts
            st.documents += 1
            yield Item(doc, doc_id, suffix, source, seq, rec.position)
