"""A whole ``Shipper`` against a fake cluster whose answers come back out of order: the
checkpoint follows the sink's results in the order the records were read, so it is never ahead
of what the cluster acknowledged — a chunk still in flight or refused holds back the later ones,
and records without a document wait for the documents before them."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from shipper.checkpoint import CheckpointStore
from shipper.config import ShipperConfig
from shipper.pipeline import iter_documents
from shipper.ship import Shipper
from shipper.sink import BulkOptions, ShipError

CHUNK = 10
WAIT = 10.0


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body


class OutOfOrderCluster:
    """Chunk 0 is answered only after chunk 2, chunk 1 only after chunks 2 and 3 (refused with
    ``refuse``); the others at once. A chunk is known by the place of its first document."""

    def __init__(self, order: dict[str, int], refuse: bool) -> None:
        self.order = order  # _id → index of the document in the file
        self.refuse = refuse
        self.answered = [threading.Event() for _ in range(len(order) // CHUNK + 2)]

    def bulk(self, *, operations: bytes, **_kw: Any) -> _Response:
        lines = operations.split(b"\n")
        chunk = self.order[orjson.loads(lines[0])["create"]["_id"]] // CHUNK
        n = len(lines) // 2
        try:
            if chunk == 0:
                assert self.answered[2].wait(WAIT)
            if chunk == 1:
                assert self.answered[2].wait(WAIT) and self.answered[3].wait(WAIT)
                if self.refuse:
                    item = {"status": 403, "error": {"type": "security_exception", "reason": "no"}}
                    return _Response({"errors": True, "items": [{"create": item}] * n})
            return _Response({"errors": False, "items": [{"create": {"status": 201}}] * n})
        finally:
            self.answered[chunk].set()


def _other_provider(line: str) -> str:
    doc = json.loads(line)
    doc["winlog"]["provider_name"] = "Microsoft-Windows-Security-Auditing"
    doc["winlog"]["channel"] = "Security"
    doc.get("event", {}).pop("provider", None)
    return json.dumps(doc)


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    gen = tmp_path_factory.mktemp("gen")
    args = ["--out", str(gen), "--events", "120", "--forms", "winlogbeat"]
    subprocess.run([sys.executable, "-m", "samples", "generate", *args], check=True, capture_output=True)
    return (gen / "winlogbeat.ndjson").read_text(encoding="utf-8").splitlines()


@pytest.fixture
def source(lines: list[str], tmp_path: Path) -> Path:
    """120 records: every fourth one of another provider (no document)."""
    mixed = [_other_provider(line) if i % 4 == 3 else line for i, line in enumerate(lines)]
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join(mixed) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("refuse", [True, False])
def test_the_checkpoint_follows_the_answers_in_read_order(source: Path, tmp_path: Path, refuse: bool) -> None:
    items = list(iter_documents([str(source)]))
    assert len(items) == 90
    cluster = OutOfOrderCluster({it.doc_id: i for i, it in enumerate(items)}, refuse)
    bulk = BulkOptions(max_docs=CHUNK, in_flight=4)
    cfg = ShipperConfig(state_dir=str(tmp_path / "state"), bulk=bulk)
    sh = Shipper(cfg, cluster)  # type: ignore[arg-type]
    if refuse:
        with pytest.raises(ShipError, match="refuses writes"):
            sh.run([str(source)])
    else:
        sh.run([str(source)])
    cp = CheckpointStore(tmp_path / "state").load(str(source))
    assert cp is not None
    if refuse:
        # chunk 0 and the record without a document after it; chunks 2 and 3 were acknowledged
        # by the cluster, but come after the refused chunk 1
        assert cp.acked == items[CHUNK].seq - 1 and not cp.done
        assert cp.offset_seq <= cp.acked
    else:
        assert cp.acked == 120 and cp.done
    assert sh._sources[str(source)].mark.gaps == 0


class GatedCluster:
    """Holds the requests that start with one of ``held`` until ``open`` is set."""

    def __init__(self, held: set[str]) -> None:
        self.held = held
        self.open = threading.Event()

    def bulk(self, *, operations: bytes, **_kw: Any) -> _Response:
        lines = operations.split(b"\n")
        if orjson.loads(lines[0])["create"]["_id"] in self.held:
            assert self.open.wait(WAIT)
        return _Response({"errors": False, "items": [{"create": {"status": 201}}] * (len(lines) // 2)})


def test_a_file_read_on_while_its_last_read_waits_for_answers(lines: list[str], tmp_path: Path) -> None:
    """Watch reads a grown file on (``skip`` = what the last read consumed) while the last
    read's chunk is still in flight: what was appended makes no document, and still the
    checkpoint does not pass the records that wait for their answer."""
    path = tmp_path / "grows.ndjson"
    path.write_text("\n".join(lines[:20]) + "\n", encoding="utf-8")
    items = list(iter_documents([str(path)]))
    cluster = GatedCluster({items[CHUNK].doc_id})
    cfg = ShipperConfig(state_dir=str(tmp_path / "state"), bulk=BulkOptions(max_docs=CHUNK, in_flight=2))
    sh = Shipper(cfg, cluster, flush_interval=0.0)  # type: ignore[arg-type]
    assert sh.ship_source(str(path), hold_last_error=True).records == 20
    sh.sink.maybe_flush()
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(_other_provider(line) for line in lines[20:23]) + "\n")
    assert sh.ship_source(str(path), skip=20, hold_last_error=True).records == 23
    st = sh._sources[str(path)]
    assert st.mark.acked <= CHUNK and not st.done  # records 11-20 are still in flight
    sh.writer.save(st)
    cp = CheckpointStore(tmp_path / "state").load(str(path))
    assert cp is not None and cp.acked <= CHUNK and not cp.done
    cluster.open.set()
    sh.close()
    cp = CheckpointStore(tmp_path / "state").load(str(path))
    assert cp is not None and cp.acked == 23 and cp.done
