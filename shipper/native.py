"""The optional native mapping core (``sysmon_native``, built from ``native/`` with maturin).

When it is installed, EVTX files are parsed and their ordinary Sysmon records mapped to ECS in
Rust, on the parser's own thread pool; every other record takes the Python path. The native
documents and ids are the Python mapper's, byte for byte in content
(``tests/unit/test_native.py`` compares both on the shared data and on random records).
``SYSMON_NATIVE=0`` turns it off (the pure-Python path, for comparison or as a workaround).
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import cache
from types import ModuleType

import orjson

#: Every native document starts ``{"@timestamp":"<24 characters>","event":{`` (the mapper
#: writes these two fields first; ``native/src/bulk.rs`` relies on the same head).
NATIVE_HEAD = b'{"@timestamp":"'
NATIVE_EVENT = b'","event":{'


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


@cache
def native() -> ModuleType | None:
    """The initialised native module, or None when it is missing or turned off."""
    if os.environ.get("SYSMON_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        import sysmon_native
    except ImportError:
        return None
    from shipper.sysmon.psl import rules

    try:
        suffixes, max_label = rules()
    except AttributeError:  # a publicsuffixlist release without those internals: stay exact
        return None
    sysmon_native.set_public_suffixes(suffixes, max_label)
    module: ModuleType = sysmon_native
    return module


def native_head(doc_json: bytes) -> bool:
    """Whether ``doc_json`` starts as every native document does."""
    return doc_json[:15] == NATIVE_HEAD and doc_json[39:50] == NATIVE_EVENT


def document_time(doc_json: bytes) -> str:
    """The ``@timestamp`` of a document given as JSON: read from a native document's head,
    decoded from any other ("" without one)."""
    if native_head(doc_json):
        return doc_json[15:39].decode()
    return str(orjson.loads(doc_json).get("@timestamp", ""))


def available() -> bool:
    return native() is not None


def threads_started() -> bool:
    """Whether the native core has started threads in this process (then ``fork`` is unsafe:
    the child would wait on threads it does not have)."""
    import sys

    module = sys.modules.get("sysmon_native")
    return bool(module is not None and module.threads_started())
