"""Event templates against a real node: idempotent install, alias, priority, types, normaliser."""

from __future__ import annotations

import json

from elasticsearch import Elasticsearch

from shipper.sysmon.fields import EMITTED_FIELDS, MULTI_FIELD_PATHS
from shipper.templates import (
    INDEX_TEMPLATE_FILE,
    PRIORITY,
    generate_index_template,
    generate_mappings,
    generate_settings,
    install,
    mappings_dir,
)


def test_files_in_mappings_are_what_the_field_table_generates() -> None:
    for name, body in (
        ("events-settings.json", generate_settings()),
        ("events-mappings.json", generate_mappings()),
        (INDEX_TEMPLATE_FILE, generate_index_template()),
    ):
        on_disk = json.loads((mappings_dir() / name).read_text())
        assert on_disk == body, f"{name} is stale: run python -m shipper.templates generate"


def test_install_is_idempotent_and_says_what_changed(es: Elasticsearch, prefix: str) -> None:
    first = [(t.name, c) for t, c in install(es, prefix)]
    assert first == [
        (f"{prefix}-events-settings", "created"),
        (f"{prefix}-events-mappings", "created"),
        (f"{prefix}-events", "created"),
    ]
    assert {c for _, c in install(es, prefix)} == {"unchanged"}
    changed = {t.name: c for t, c in install(es, prefix, replicas=1)}
    assert changed[f"{prefix}-events-settings"] == "updated"
    assert changed[f"{prefix}-events-mappings"] == "unchanged"
    tpl = es.indices.get_index_template(name=f"{prefix}-events")["index_templates"][0]["index_template"]
    assert tpl["priority"] == PRIORITY > 500


def test_an_event_index_gets_the_types_alias_and_normaliser(es: Elasticsearch, prefix: str) -> None:
    install(es, prefix)
    index = f"{prefix}-events-2024.03"
    doc = {
        "@timestamp": "2024-03-05T10:00:00.000Z",
        "process": {"executable": "C:\\Windows\\System32\\CMD.EXE", "pid": 42},
        "source": {"ip": "10.1.2.3"},
        "winlog": {"event_data": {"IntegrityLevel": "High", "TerminalSessionId": 1, "Odd": True}},
        "not_ecs": {"anything": 1},
    }
    es.create(index=index, id="1", document=doc, refresh=True)
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    props = mapping["properties"]
    assert "not_ecs" not in props  # dynamic false: kept in _source, never typed
    ed = props["winlog"]["properties"]["event_data"]["properties"]
    assert {k: v["type"] for k, v in ed.items()} == {
        k: "keyword" for k in ("IntegrityLevel", "TerminalSessionId", "Odd")
    }
    assert props["source"]["properties"]["ip"]["type"] == "ip"
    exe = props["process"]["properties"]["executable"]
    assert exe["type"] == "keyword" and set(exe["fields"]) == {"text", "caseless"}
    hit = es.search(
        index=f"{prefix}-events",
        query={"term": {"process.executable.caseless": "c:\\windows\\system32\\cmd.exe"}},
    )
    assert hit["hits"]["total"]["value"] == 1
    hit = es.search(index=f"{prefix}-events", query={"term": {"source.ip": "10.0.0.0/8"}})
    assert hit["hits"]["total"]["value"] == 1
    # every emitted field has an explicit mapping of the table's type (match_only_text -> text)
    fields = es.field_caps(index=index, fields="*")["fields"]
    for path, es_type in EMITTED_FIELDS.items():
        if path.endswith(".*"):
            continue
        want = "text" if es_type == "match_only_text" else es_type
        assert want in fields[path], path
    for path in MULTI_FIELD_PATHS:
        assert fields[f"{path}.caseless"]["keyword"]["searchable"]
