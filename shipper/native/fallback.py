"""Why the native core leaves a record to Python: the reasons it counts."""

from __future__ import annotations

from enum import StrEnum


class FallbackReason(StrEnum):
    """Why the native core left a record to Python (``native/src/fallback.rs``; the values are
    the core's names). Python reads and maps such a record: a cost in speed, never a difference
    in the documents."""

    #: odd or missing System fields, a float, array or object where a value should be, no time
    SHAPE = "shape"
    #: text beyond ASCII where Python case-folds, strips, slices or parses it
    NON_ASCII = "non_ascii"
    #: a value the core does not convert the way Python might (an integer beyond 64 bits or with
    #: underscores, a time outside the fast layouts, an IP address as a DNS name)
    UNUSUAL_VALUE = "unusual_value"
    #: a value Python cannot convert either: the document is a ``pipeline_error``
    PIPELINE_ERROR = "pipeline_error"
    #: a record Python's reader reports as an error (no event ID or provider)
    READ_ERROR = "read_error"
    #: EVTX: a record of another provider (read and counted by Python)
    OTHER_PROVIDER = "other_provider"
    #: JSON lines: a line that is not one JSON object
    BROKEN_LINE = "broken_line"
    #: JSON lines: bytes that are not UTF-8, or U+FFFD
    UNDECODABLE = "undecodable"
