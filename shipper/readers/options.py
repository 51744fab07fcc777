"""How the sources of a run are read: one frozen object the CLI builds, which travels unchanged
to the shipper, the pipeline, its worker processes and the readers."""

from __future__ import annotations

from dataclasses import dataclass

from shipper.readers.evtx import EvtxBackend


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How every source of a run is read and mapped: the CLI builds one, and it travels
    unchanged to the shipper, the pipeline, its worker processes and the readers."""

    fmt: str | None = None  # input form; None: detected per source from its head
    evtx_backend: EvtxBackend = "auto"
    host: str | None = None  # host.name for forms that lack it (rendered text)
    skip_errors: bool = False  # count bad records and drop them instead of tagging them
    #: a read error on a source's very last record is held back (not counted, not yielded):
    #: watch mode reads that line again on its next pass, as it was probably being written
    hold_last_error: bool = False


#: the options of a read that says nothing: forms detected, the fast EVTX parser, errors tagged
DEFAULT_OPTIONS = ReadOptions()
