"""The optional native core (``sysmon_native``, built from ``native/`` with maturin), behind one
seam: loading it, the head of its documents, and reading sources with it.

When it is installed, EVTX files and winlogbeat / NXLog JSON lines are parsed and their
ordinary Sysmon records mapped to ECS in Rust; every other record takes the Python path (why,
per ``FallbackReason``, is counted in the run's stats). The native documents and ids are the
Python mapper's, byte for byte in content (``tests/unit/test_native.py`` and
``test_native_jsonl.py`` compare both). ``SYSMON_NATIVE=0`` turns it off (the pure-Python
path, for comparison or as a workaround).

The pipeline owns a ``NativeSession`` per stream (a shipping run, per run) and asks it to read
each opened source; it declines the forms it does not read, which their readers read.
"""

from __future__ import annotations

from shipper.native.batch import MappedBatch
from shipper.native.core import available, native, threads_started
from shipper.native.fallback import FallbackReason
from shipper.native.head import NATIVE_EVENT, NATIVE_HEAD, document_time, native_head
from shipper.native.session import PREFETCH_AHEAD, NativeSession, native_session

__all__ = [
    "NATIVE_EVENT",
    "NATIVE_HEAD",
    "PREFETCH_AHEAD",
    "FallbackReason",
    "MappedBatch",
    "NativeSession",
    "available",
    "document_time",
    "native",
    "native_head",
    "native_session",
    "threads_started",
]
