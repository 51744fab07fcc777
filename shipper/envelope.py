"""Where a shipped document came from: the collector that shipped it (``agent.*``), the file it
was read from (``log.file.path``), and the labels and tags of the run (``labels.*``, ``tags``).

The sink adds these to every event document as it queues it. They are never part of the
document's ``_id`` (that comes from the event alone), so shipping the same event again from
another collector, another path or with other labels still adds nothing: the first shipment
wins.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import orjson

from shipper import __version__
from shipper.errors import ConfigError
from shipper.inputs import STDIN

AGENT_TYPE = "sysmon-ship"
#: The fields added here, with their types (the event templates map them).
FIELDS: Final = MappingProxyType(
    {
        "agent.type": "keyword",
        "agent.version": "keyword",
        "agent.name": "keyword",
        "agent.id": "keyword",
        "agent.ephemeral_id": "keyword",
        "tags": "keyword",
    }
)
#: ``labels.<key>``: a key a field name can hold (ECS: no dots, keyword values).
LABEL_KEY = re.compile(r"^[A-Za-z0-9_@-]{1,64}$")
_LOG = b',"log":{'


def parse_labels(pairs: Iterable[str], where: str) -> dict[str, str]:
    """``KEY=VALUE`` strings as labels; a malformed one is an error naming it."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        check_label(key, value if sep else None, where)
        out[key] = value
    return out


def check_label(key: str, value: str | None, where: str) -> None:
    if value is None:
        raise ConfigError(f"label {key!r}: give KEY=VALUE", source=where)
    if not LABEL_KEY.match(key):
        raise ConfigError(
            f"label key {key!r}: use letters, digits, '_', '-' and '@' (no dots), up to 64", source=where
        )


def agent_id(state_dir: str | Path) -> str:
    """The collector's id: made once and kept in the state directory, as Filebeat keeps its
    own, so that it survives restarts and upgrades."""
    path = Path(state_dir) / "agent-id"
    try:
        text = path.read_text(encoding="ascii").strip()
        return str(uuid.UUID(text))
    except (OSError, ValueError):
        pass
    new = str(uuid.uuid4())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".agent-id.{os.getpid()}")
    tmp.write_text(new + "\n", encoding="ascii")
    os.replace(tmp, path)
    return new


@dataclass(frozen=True)
class InputLabels:
    """Labels and tags of one configured input (``inputs: [{path:, labels:, tags:}]``), added to
    the run's for the documents of every source that input names."""

    labels: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Envelope:
    """What every document of one run gets (``tail``), and per source its ``log.file.path``."""

    agent_name: str
    agent_id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    ephemeral_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        # built once per run: every document of the run gets these
        fields: dict[str, Any] = {
            "agent": {
                "type": AGENT_TYPE,
                "version": __version__,
                "name": self.agent_name,
                "id": self.agent_id,
                "ephemeral_id": self.ephemeral_id,
            }
        }
        if self.labels:
            fields["labels"] = dict(self.labels)
        if self.tags:
            fields["tags"] = list(self.tags)
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "tail", b"," + orjson.dumps(fields)[1:-1])

    #: the run's fields (values shared by every document: read them, never change them) and
    #: the same as JSON members, ``,"agent":{…}…``, for the end of a serialised document
    _fields: dict[str, Any] = field(init=False, repr=False, compare=False)
    tail: bytes = field(init=False, repr=False, compare=False)

    @classmethod
    def for_run(
        cls,
        state_dir: str | Path,
        *,
        name: str | None = None,
        id: str | None = None,
        labels: Mapping[str, str] | None = None,
        tags: Iterable[str] = (),
    ) -> Envelope:
        return cls(
            agent_name=name or socket.gethostname(),
            agent_id=id or agent_id(state_dir),
            labels=dict(labels or {}),
            tags=tuple(dict.fromkeys(tags)),
        )

    def extended(self, extra: InputLabels) -> Envelope:
        """This run's envelope with an input's labels (an input's value wins over the run's for
        the same key) and tags (after the run's) added; the same agent and ephemeral id."""
        return replace(
            self,
            labels={**self.labels, **extra.labels},
            tags=tuple(dict.fromkeys((*self.tags, *extra.tags))),
        )

    def apply(self, doc: dict[str, Any], file: FilePath) -> None:
        """Add the run's fields and ``log.file.path`` to a document as a dict (an error
        document's own ``log.file.path`` is kept)."""
        doc.update(self._fields)
        if file.path is not None:
            log = doc.setdefault("log", {})
            if isinstance(log, dict):
                log.setdefault("file", {"path": file.path})


@dataclass(frozen=True, slots=True)
class SourceFields:
    """What the documents of one source get: the envelope (the run's, or extended by its
    input's labels) and ``log.file.path``."""

    envelope: Envelope
    file: FilePath


@dataclass(frozen=True, slots=True)
class FilePath:
    """``log.file.path`` of one source's documents, as text and as the JSON member
    ``"file":{"path":…}`` (both made once per source)."""

    path: str | None  # None: standard input, which has no file
    json: bytes = b""

    @classmethod
    def of(cls, source: str, label: str | None = None) -> FilePath:
        """``source`` made absolute, or ``label`` for a source read through a handle."""
        if label is None and source == STDIN:
            return cls(None)
        path = label or os.path.abspath(source)
        return cls(path, b'"file":{"path":' + orjson.dumps(path) + b"}")


def wrap(doc: bytes, tail: bytes, log_file: bytes) -> bytes:
    """A document the native core serialised with ``log_file`` (``FilePath.json``) merged into
    its ``log`` and ``tail`` appended. Its first ``,"log":{`` is its own ``log``: the mapper
    writes ``log`` at the top level only, and a string cannot hold that unescaped. The native
    core does the same for runs (``bulk.rs``)."""
    if log_file:
        at = doc.find(_LOG)
        if at >= 0:
            cut = at + len(_LOG)
            comma = b"" if doc[cut : cut + 1] == b"}" else b","
            return b"".join((doc[:cut], log_file, comma, doc[cut:-1], tail, b"}"))
        return b"".join((doc[:-1], _LOG, log_file, b"}", tail, b"}"))
    return b"".join((doc[:-1], tail, b"}"))
