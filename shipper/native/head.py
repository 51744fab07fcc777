"""The head every native document starts with, ``{"@timestamp":"<24 characters>","event":{``:
the mapper writes these two fields first, so the sink and the pipeline read the time and
splice ``event.ingested`` in without decoding the document (``native/src/bulk.rs`` relies on
the same head)."""

from __future__ import annotations

import orjson

NATIVE_HEAD = b'{"@timestamp":"'
NATIVE_EVENT = b'","event":{'


def native_head(doc_json: bytes) -> bool:
    """Whether ``doc_json`` starts as every native document does."""
    return doc_json[:15] == NATIVE_HEAD and doc_json[39:50] == NATIVE_EVENT


def document_time(doc_json: bytes) -> str:
    """The ``@timestamp`` of a document given as JSON: read from a native document's head,
    decoded from any other ("" without one)."""
    if native_head(doc_json):
        return doc_json[15:39].decode()
    return str(orjson.loads(doc_json).get("@timestamp", ""))
