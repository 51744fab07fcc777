"""Input readers: one per input form, all yielding ``RawEvent | ReadError``.

``open_source(path_or_dash, ReadOptions(...))`` is the entry point;
``READERS`` maps a format name (``evtx``, ``xml``, ``json``, ``text``) to its reader and
``detect_format`` recognises a form from a file's first bytes.
"""

from shipper.readers.options import ReadOptions
from shipper.readers.registry import READERS, detect_format, open_source, register

__all__ = ["READERS", "ReadOptions", "detect_format", "open_source", "register"]
