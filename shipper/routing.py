"""A stream's events routed to the sink and to each source's state.

Acknowledgement is by record ordinal (``Item.seq`` counts every record the reader yields, other
providers included): records that produce no document are passed to the sink once the stream
has moved past them (``pass_over``: done once the documents before them are), documents are
done when their bulk response is in; the sink hands both back in order. A source's trailing
records without a document are passed at its ``SourceEnded``.

Line-based sources also carry each record's end offset: the state keeps the ends of the
documents sent, so that the checkpoint can store the resume point of the last document at or
below the watermark, and ``read_points`` where the last read of each path got to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass

from shipper.checkpoint import ResumePoint
from shipper.checkpointing import CheckpointWriter, SourceState
from shipper.inputs import STDIN
from shipper.sink import BulkSink
from shipper.stream import Event, Item, ItemRun, SourceEnded, SourceRead, SourceStarted
from shipper.summary import Progress
from shipper.templates import events_index


@dataclass
class Read:
    """One source being read: its state, what to read, and how far the stream got."""

    state: SourceState
    spec: SourceRead
    last: int  # seq of the last record routed (or skipped)
    total: int | None = None  # records read in all, once the read ended
    held_back: bool = False


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What one read of a source came to: ``records`` read in all (the seq of the last), and
    whether one more, a read error on the very last record, was held back for the next pass."""

    records: int
    held_back: bool = False


class Router:
    def __init__(
        self,
        sink: BulkSink,
        writer: CheckpointWriter,
        index_prefix: str,
        progress: Progress,
        read_points: dict[str, ResumePoint],
    ) -> None:
        self.sink = sink
        self.writer = writer
        self.index_prefix = index_prefix
        self.index_head = events_index(index_prefix, "")  # + yyyy.MM: a monthly index
        self.progress = progress
        self.read_points = read_points

    def route(
        self,
        events: Iterable[Event],
        reads: list[Read],
        stop: threading.Event,
        on_item: Callable[[Item], None] | None = None,
        announce: Callable[[int], None] | None = None,
    ) -> list[ReadResult]:
        """Send every document of ``events`` (the stream of ``reads``) until it ends or
        ``stop`` is set. ``announce(index)``: a read begins."""
        r = reads[0] if reads else None
        try:
            for event in events:
                if isinstance(event, SourceStarted):
                    r = reads[event.index]
                    if announce is not None:
                        announce(event.index)
                    continue
                assert r is not None
                if isinstance(event, SourceEnded):
                    self._ended(r, event)
                    continue
                if isinstance(event, ItemRun):  # native documents: never errors
                    self.sink.pass_over(r.state.path, r.last + 1, event.first_seq - 1)  # no document
                    r.last = event.last_seq
                    self._send_run(event, r.state)
                else:
                    if event.seq > r.last + 1:
                        self.sink.pass_over(r.state.path, r.last + 1, event.seq - 1)  # no document
                    r.last = event.seq
                    self.send(event, r.state)
                    if on_item is not None:
                        on_item(event)
                if stop.is_set():
                    r.total = r.last  # stopped: nothing after it is acknowledged
                    break
        finally:
            if isinstance(events, Generator):
                events.close()  # a parallel pipeline stops its workers at once
        return [ReadResult(x.total if x.total is not None else x.spec.base, x.held_back) for x in reads]

    def _ended(self, r: Read, ended: SourceEnded) -> None:
        r.total, r.held_back = ended.records, ended.held_back
        r.state.total = ended.records  # set first: the pass below may make it done at once
        self.sink.pass_over(r.state.path, r.last + 1, ended.records)
        if r.state.done:
            self.writer.want(r.state)

    def _send_run(self, run: ItemRun, st: SourceState) -> None:
        ends, end_lines = run.end_offsets, run.end_lines
        if ends is not None and end_lines is not None and run.source != STDIN:
            st.ends.append((run.first_seq, ends, end_lines))
            self.read_points[run.source] = ResumePoint(ends[-1], end_lines[-1], run.last_seq)
        self.sink.add_json_run(run.docs, run.doc_ids, self.index_head, run.source, run.first_seq)

    def send(self, item: Item, st: SourceState | None = None) -> None:
        end, line = item.end_offset, item.end_line
        if st is not None and end is not None and line is not None and item.source != STDIN:
            # before the sink may acknowledge it
            st.ends.append((item.seq, [end], [line]))
            self.read_points[item.source] = ResumePoint(end, line, item.seq)
        index = events_index(self.index_prefix, item.index_suffix)
        if item.doc_json is not None:
            self.sink.add_json(item.doc_json, index, item.doc_id, (item.source, item.seq))
        else:
            self.sink.add(item.doc, index, item.doc_id, (item.source, item.seq))
        self.progress.advance(1)
