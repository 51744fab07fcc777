"""The three intel indices, their names, and ``setup_intel`` that installs their templates.

* ``<prefix>-intel-indicators`` — one document per (feed, type, value), id
  :func:`indicator_id`; ECS ``threat.indicator.*`` plus ``intel.*`` (feed, kind, generation, …).
* ``<prefix>-intel-lookup`` — term lists for ``terms`` lookups: one document per (feed, type,
  generation, chunk), id :func:`chunk_id`, with a ``values`` array (read from ``_source``, never
  indexed) of at most ``chunk_size`` entries, below ``index.max_terms_count``.
* ``<prefix>-intel-feeds`` — one document per feed, id the feed name: the *manifest* (which chunk
  documents make up the feed's current list) and the feed's refresh state. Readers read it first;
  flipping it is what makes a refresh atomic (see ``detectors/intel/generation.py``).
* ``<prefix>-intel-enrich`` — what hash enrichment learnt (:mod:`detectors.intel.enrich`): one
  verdict per (service, hash) and one request budget per service, shared by every collector.

Templates live in ``mappings/intel-*.json`` with ``{prefix}`` in their index patterns.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from elasticsearch import BadRequestError, Elasticsearch

from shipper.templates import mappings_dir

TEMPLATES = ("intel-indicators", "intel-lookup", "intel-feeds", "intel-enrich")
MAX_TERMS_COUNT = 65_536  # Elasticsearch's default index.max_terms_count
DEFAULT_CHUNK_SIZE = 50_000


def indicators_index(prefix: str) -> str:
    return f"{prefix}-intel-indicators"


def lookup_index(prefix: str) -> str:
    return f"{prefix}-intel-lookup"


def feeds_index(prefix: str) -> str:
    return f"{prefix}-intel-feeds"


def enrich_index(prefix: str) -> str:
    return f"{prefix}-intel-enrich"


def indicator_id(feed: str, kind: str, value: str) -> str:
    """Deterministic id of the document of indicator ``(kind, value)`` in ``feed``."""
    digest = hashlib.blake2b(f"{feed}\0{kind}\0{value}".encode(), digest_size=16).hexdigest()
    return f"{feed}:{digest}"


def chunk_id(feed: str, generation_id: str, kind: str, number: int) -> str:
    return f"{feed}:{generation_id}:{kind}:{number}"


def template(name: str, prefix: str) -> dict[str, Any]:
    """The index template ``mappings/<name>.json`` with ``{prefix}`` filled in."""
    text = (mappings_dir() / f"{name}.json").read_text(encoding="utf-8")
    body: dict[str, Any] = json.loads(text.replace("{prefix}", prefix))
    return body


def setup_intel(es: Elasticsearch, prefix: str = "sysmon") -> list[str]:
    """Install the intel index templates and create the intel indices (idempotent).

    Returns the names of the indices. Safe to run again after a template change: the templates are
    replaced, existing indices are left as they are.
    """
    created: list[str] = []
    for name in TEMPLATES:
        body = template(name, prefix)
        es.indices.put_index_template(name=f"{prefix}-{name}", **body)
        index = f"{prefix}-{name}"
        try:
            es.indices.create(index=index)
        except BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise
        created.append(index)
    return created
