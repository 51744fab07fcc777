"""EVTX files read with the native core: ``shipper.readers.evtx``'s records, errors and
recovery, but runs of ordinary Sysmon records arrive already mapped (MappedBatch).

The core's ``EvtxDocuments(path, threads)`` parses the file on a worker thread and hands back
batches of ``MappedRun`` (records mapped there), ``PythonRecord`` (a record left to Python,
with its reason) and ``ParserError`` (a record or chunk the parser rejected, worded as
pyevtx-rs words it, so the reader's recovery applies unchanged).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import orjson

from shipper.native.batch import MappedBatch
from shipper.raw import RawEvent, ReadError
from shipper.readers.evtx import RECENT_RECORDS, event_from_json, parser_error, recover_tail
from shipper.stats import Stats


def read_evtx_native(
    core: ModuleType, records: Any, path: str, source: str, stats: Stats, *, fallback: bool
) -> Iterator[RawEvent | MappedBatch | ReadError]:
    """The records of ``records`` (the core's ``EvtxDocuments`` of ``path``). ``fallback``:
    recover rejected chunks and a truncated tail with python-evtx (``evtx_backend="auto"``).
    Why the core left each record to Python is counted in ``stats.native_fallbacks``."""
    loads = orjson.loads
    recent: deque[int] = deque(maxlen=RECENT_RECORDS)
    mapped_run, python_record = core.MappedRun, core.PythonRecord
    while (batch := records.next_batch()) is not None:
        for item in batch:
            kind = type(item)
            if kind is mapped_run:
                recent.extend(item.header_ids)
                yield MappedBatch(item.event_ids, item.docs, item.ids, item.record_ids, source)
            elif kind is python_record:
                stats.native_fallbacks[item.reason] += 1
                header_id = item.header_id
                try:
                    event = event_from_json(loads(item.json), source, header_id)
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    where = f"record {header_id}"
                    yield ReadError("evtx_record", f"undecodable record: {exc}", source, where)
                    continue
                recent.append(header_id)
                yield event
            else:  # a ParserError
                yield from parser_error(item.message, path, source, recent, fallback)
    if fallback:
        yield from recover_tail(path, source, recent)
