"""Helpers for the detector integration tests (no tests here): generate a sample day, ship it
with the real pipeline and sink, load its intel and allowlists, index hand-made ECS events."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from detectors.engine import Engine, EngineOptions
from detectors.intel.indices import setup_intel
from detectors.intel.loader import feed_from_location, load_feed
from detectors.loader import BUILTIN_DIR, load_rules
from detectors.model import Rule
from detectors.setup import setup_alerts
from shipper.es import ClusterSettings
from shipper.pipeline import iter_documents
from shipper.sink import BulkSink
from shipper.templates import events_index


def generate_day(out: Path, events: int = 3000, seed: int = 7) -> Path:
    subprocess.run(
        [sys.executable, "-m", "samples", "generate", "--out", str(out), "--events", str(events),
         "--seed", str(seed), "--forms", "winlogbeat"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return out


def ship(es: Elasticsearch, prefix: str, paths: Sequence[str], *, only_hosts: Iterable[str] | None = None,
         skip_hosts: Iterable[str] = ()) -> int:  # fmt: skip
    """Ship sample files with the real pipeline and sink; optionally only/except some hosts."""
    only = set(only_hosts) if only_hosts is not None else None
    skip = set(skip_hosts)
    n = 0
    with BulkSink(es) as sink:
        for item in iter_documents(list(paths)):
            host = (item.doc.get("host") or {}).get("name")
            if (only is not None and host not in only) or host in skip:
                continue
            sink.add(item.doc, events_index(prefix, item.index_suffix), item.doc_id, (item.source, item.seq))
            n += 1
    es.indices.refresh(index=f"{prefix}-events-*")
    return n


def load_sample_intel(es: Elasticsearch, prefix: str, intel_dir: Path, cache: Path) -> None:
    setup_intel(es, prefix)
    for f in sorted(intel_dir.iterdir()):
        kind = "allow" if f.name.startswith("allowlist") else "intel"
        res = load_feed(
            es, feed_from_location(str(f), name=f.stem, kind=kind), prefix=prefix, cache_dir=cache / f.stem
        )
        assert res.status == "loaded", (f, res)
    es.indices.refresh(index=f"{prefix}-intel-*")


def builtin_rules() -> list[Rule]:
    res = load_rules([BUILTIN_DIR], strict=True)
    return list(res.rules)


def make_engine(es: Elasticsearch, prefix: str, rules: Sequence[Rule] | None = None, **opts: Any) -> Engine:
    setup_alerts(es, prefix)
    opts.setdefault("ingest_delay", 0.0)
    return Engine(es, prefix, list(rules) if rules is not None else builtin_rules(), EngineOptions(**opts))


def alerts(es: Elasticsearch, prefix: str, rule_id: str | None = None) -> list[dict[str, Any]]:
    es.indices.refresh(index=f"{prefix}-alerts-*", ignore_unavailable=True, allow_no_indices=True)
    q: dict[str, Any] = {"match_all": {}} if rule_id is None else {"term": {"rule.id": rule_id}}
    out: list[dict[str, Any]] = []
    resp = es.search(index=f"{prefix}-alerts-*", query=q, size=10_000, ignore_unavailable=True,
                     allow_no_indices=True, sort=["_doc"])  # fmt: skip
    for h in resp["hits"]["hits"]:
        out.append({"_id": h["_id"], "_index": h["_index"], **h["_source"]})
    return out


def count_alerts(es: Elasticsearch, prefix: str, rule_id: str | None = None) -> int:
    es.indices.refresh(index=f"{prefix}-alerts-*", ignore_unavailable=True, allow_no_indices=True)
    q: dict[str, Any] = {"match_all": {}} if rule_id is None else {"term": {"rule.id": rule_id}}
    return int(es.count(index=f"{prefix}-alerts-*", query=q, ignore_unavailable=True,
                        allow_no_indices=True)["count"])  # fmt: skip


def truth(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path / "truth.json").read_text())
    return data


# ------------------------------------------------------------------ hand-made events
EVENT_TEMPLATE_READY: set[str] = set()


def ensure_templates(es: Elasticsearch, prefix: str) -> None:
    if prefix not in EVENT_TEMPLATE_READY:
        setup_alerts(es, prefix)
        EVENT_TEMPLATE_READY.add(prefix)


def ts_ago(days_ago: float = 0.0, seconds: float = 0.0) -> str:
    """An ISO time ``days_ago`` days before now, plus ``seconds``."""
    t = datetime.now(UTC) - timedelta(days=days_ago) + timedelta(seconds=seconds)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cli_env(s: ClusterSettings, prefix: str) -> dict[str, str]:
    """The environment a ``sysmon-detect`` CLI run needs for the test cluster and ``prefix``."""
    env = {"ES_URL": s.url, "SYSMON_INDEX_PREFIX": prefix, "SYSMON_RULES_DIRS": ""}
    if s.username:
        env |= {"ES_USERNAME": s.username, "ES_PASSWORD": s.password or ""}
    if s.ca_certs:
        env["ES_CA_CERTS"] = s.ca_certs
    return env


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def proc_event(host: str, ts: str, entity: str, parent: str | None, exe: str, *, pid: int = 100,
               code: str = "1", extra: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    doc: dict[str, Any] = {
        "@timestamp": ts,
        "event": {"kind": "event", "code": code, "module": "sysmon", "ingested": now_iso()},
        "host": {"name": host},
        "process": {
            "entity_id": entity,
            "executable": exe,
            "name": exe.rsplit("\\", 1)[-1],
            "command_line": f'"{exe}" --level',
            "pid": pid,
        },
    }
    if parent:
        doc["process"]["parent"] = {"entity_id": parent}
    if extra:
        for k, v in extra.items():
            cur = doc
            parts = k.split(".")
            for p in parts[:-1]:
                cur = cur.setdefault(p, {})
            cur[parts[-1]] = v
    return doc


def index_docs(
    es: Elasticsearch, prefix: str, docs: Sequence[dict[str, Any]], *, stamp: bool = True
) -> list[str]:
    """Index ECS docs into ``<prefix>-events-YYYY.MM`` (by @timestamp) with fresh ids; sets
    ``event.ingested`` to now unless ``stamp`` is False."""
    ensure_templates(es, prefix)
    lines: list[dict[str, Any]] = []
    ids: list[str] = []
    for d in docs:
        if stamp:
            d.setdefault("event", {})["ingested"] = now_iso()
        ts = str(d["@timestamp"])
        i = uuid.uuid4().hex
        ids.append(i)
        lines.append({"create": {"_index": events_index(prefix, f"{ts[:4]}.{ts[5:7]}"), "_id": i}})
        lines.append(d)
    for k in range(0, len(lines), 4000):
        resp = es.bulk(operations=lines[k : k + 4000], refresh=False)
        assert not resp["errors"], [it for it in resp["items"] if "error" in it["create"]][:3]
    es.indices.refresh(index=f"{prefix}-events-*")
    return ids
