"""The shipped Kibana saved objects (``kibana/*.ndjson``), checked without Kibana: every line is a
saved object, ids are unique, references resolve, dashboard panels and Lens states parse and hang
together, and every field any object uses is mapped by the project's templates for the index its
data view reads (with an aggregatable type where Kibana aggregates or sorts). Also the KQL-subset
translator, prefix substitution and ``sysmon-detect kibana export``."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from detectors.cli import main
from detectors.kibana.objects import KibanaError, SavedObjects, kibana_dir, load_objects, with_prefix
from shipper.errors import ConfigError
from tests.kibana_kql import kql_to_lucene, parse_kql
from tests.kibana_queries import (
    RECORDS_FIELD,
    dashboard_panels,
    data_view_of,
    fields_used,
    lens_layers,
    lens_request,
    search_request,
)

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
AGGREGATABLE = {"keyword", "long", "integer", "float", "double", "date", "ip", "boolean"}
#: One index name per kind of index the project writes (default prefix).
SAMPLE_INDICES = (
    "sysmon-events-2026.11",
    "sysmon-alerts-2026.11",
    "sysmon-intel-indicators",
    "sysmon-hunt-stack",
)


def _flatten(props: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, spec in props.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            out.update(_flatten(spec["properties"], path + "."))
            if spec.get("type") == "object":
                out[path] = "object"
            continue
        out[path] = spec.get("type", "object")
        for sub, subspec in (spec.get("fields") or {}).items():
            out[f"{path}.{sub}"] = subspec.get("type", "object")
    return out


def _templates() -> dict[str, tuple[list[str], dict[str, str]]]:
    """Index template name → (index patterns, mapped field → type), components resolved."""
    out: dict[str, tuple[list[str], dict[str, str]]] = {}
    for path in sorted(MAPPINGS.glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8").replace("{prefix}", "sysmon"))
        if "index_patterns" not in body:
            continue
        fields: dict[str, str] = {}
        for comp in body.get("composed_of", []):
            cbody = json.loads(
                (MAPPINGS / f"{comp.removeprefix('sysmon-')}.json").read_text(encoding="utf-8")
            )
            fields.update(_flatten(cbody["template"].get("mappings", {}).get("properties", {})))
        fields.update(_flatten(body.get("template", {}).get("mappings", {}).get("properties", {})))
        out[path.stem] = (body["index_patterns"], fields)
    return out


TEMPLATES = _templates()


def _mapping_for(view: dict[str, Any]) -> dict[str, str]:
    """The mapping of the indices a data view reads: the index templates whose patterns match the
    sample index names that the view's title matches (exactly one kind per view)."""
    title_patterns = str(view["attributes"]["title"]).split(",")
    indices = [i for i in SAMPLE_INDICES if any(fnmatch.fnmatchcase(i, p) for p in title_patterns)]
    assert len(indices) == 1, (view["id"], indices)
    matched = [
        fields
        for patterns, fields in TEMPLATES.values()
        if any(fnmatch.fnmatchcase(indices[0], p) for p in patterns)
    ]
    assert len(matched) >= 1, view["id"]
    # the template with the highest priority applies; ours do not overlap, so one set of fields
    assert all(m == matched[0] for m in matched), view["id"]
    return matched[0]


def _field_type(mapping: dict[str, str], name: str) -> str | None:
    if name.startswith("winlog.event_data."):
        return "keyword"  # dynamic template: everything under winlog.event_data is keyword
    return mapping.get(name)


OBJECTS = load_objects()
ALL = OBJECTS.all()
BY_KEY = OBJECTS.by_key()


def _ids(kind: str) -> list[str]:
    return [str(o["id"]) for o in ALL if o["type"] == kind]


def test_every_line_is_a_kibana_9_saved_object() -> None:
    for path in sorted(kibana_dir().glob("*.ndjson")):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines, path
        for n, line in enumerate(lines, 1):
            obj = json.loads(line)
            where = f"{path.name}:{n}"
            assert set(obj) >= {"type", "id", "attributes", "references"}, where
            assert obj["type"] in {"index-pattern", "search", "lens", "dashboard"}, where
            assert obj["coreMigrationVersion"] == "8.8.0", where
            assert obj["typeMigrationVersion"], where
            assert obj["attributes"]["title"], where
            assert isinstance(obj["references"], list), where
            assert str(obj["id"]).startswith("sysmon-"), where  # so that with_prefix renames it


def test_expected_objects_are_there() -> None:
    titles = {(o["type"], o["attributes"]["title"]) for o in ALL}
    assert {
        ("index-pattern", "sysmon-events*"),
        ("index-pattern", "sysmon-alerts*"),
        ("index-pattern", "sysmon-intel-indicators"),
        ("search", "Process creations"),
        ("search", "Network connections"),
        ("search", "DNS queries"),
        ("search", "Open alerts"),
        ("dashboard", "Sysmon overview"),
        ("dashboard", "Sysmon alerts"),
        ("index-pattern", "sysmon-hunt-stack"),
        ("search", "Unknown executables"),
        ("search", "Retro-hunt alerts"),
        ("dashboard", "Sysmon hunt"),
    } <= titles
    views = {o["attributes"]["title"]: o["attributes"] for o in ALL if o["type"] == "index-pattern"}
    assert views["sysmon-events*"]["timeFieldName"] == "@timestamp"
    # one file per dashboard, plus the data views every dashboard uses
    assert set(OBJECTS.files) == {
        "data-views.ndjson",
        "sysmon-overview.ndjson",
        "sysmon-alerts.ndjson",
        "sysmon-hunt.ndjson",
    }
    assert "timeFieldName" not in views["sysmon-hunt-stack"]  # a save's rows, not events in time
    for name, objs in OBJECTS.files.items():
        if name != "data-views.ndjson":
            assert sum(o["type"] == "dashboard" for o in objs) == 1, name


def test_ids_are_unique() -> None:
    keys = [(o["type"], o["id"]) for o in ALL]
    assert len(keys) == len(set(keys))
    ids = [o["id"] for o in ALL]
    assert len(ids) == len(set(ids)), "an id is used by two types"


def test_every_reference_resolves() -> None:
    for obj in ALL:
        names = [r["name"] for r in obj["references"]]
        assert len(names) == len(set(names)), obj["id"]
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in BY_KEY, (obj["id"], ref)


def test_saved_searches_parse_and_name_their_data_view() -> None:
    for obj in (o for o in ALL if o["type"] == "search"):
        src = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert src["query"]["language"] == "kuery"
        refs = {r["name"]: r for r in obj["references"]}
        assert refs[src["indexRefName"]]["type"] == "index-pattern"
        assert obj["attributes"]["columns"], obj["id"]
        req = search_request(OBJECTS, obj)  # builds: the KQL is in the supported subset
        assert req.columns == obj["attributes"]["columns"]


def test_process_creations_search_has_the_columns_analysts_expect() -> None:
    obj = BY_KEY[("search", "sysmon-search-process-creations")]
    assert obj["attributes"]["columns"] == [
        "host.name",
        "user.name",
        "process.executable",
        "process.command_line",
        "process.parent.executable",
        "process.hash.sha256",
    ]
    assert json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"] == (
        "event.code:1"
    )


def test_lens_states_parse_and_hang_together() -> None:
    lens_ids = _ids("lens")
    assert lens_ids
    for obj in (o for o in ALL if o["type"] == "lens"):
        attrs = obj["attributes"]
        assert attrs["visualizationType"] in {"lnsXY", "lnsDatatable", "lnsPie"}
        refs = {r["name"]: r for r in obj["references"]}
        vis = attrs["state"]["visualization"]
        vis_layers = vis.get("layers") or [vis]
        for lid, layer in lens_layers(obj).items():
            assert refs[f"indexpattern-datasource-layer-{lid}"]["type"] == "index-pattern"
            assert set(layer["columnOrder"]) == set(layer["columns"]), (obj["id"], lid)
            for col in layer["columns"].values():
                assert col["operationType"] in {"count", "terms", "date_histogram"}, obj["id"]
                if col["operationType"] == "count":
                    assert col["sourceField"] == RECORDS_FIELD
            used = set()
            for vl in vis_layers:
                if vl["layerId"] != lid:
                    continue
                used.update(vl.get("accessors", []))
                used.update(vl.get("metrics", []))
                used.update(vl.get("primaryGroups", []))
                used.update(c["columnId"] for c in vl.get("columns", []))
                for key in ("xAccessor", "splitAccessor"):
                    if vl.get(key):
                        used.add(vl[key])
            assert used == set(layer["columns"]), (obj["id"], used)
            lens_request(OBJECTS, obj, lid)  # every layer translates to an aggregation


def test_dashboards_panels_parse_and_resolve() -> None:
    for obj in (o for o in ALL if o["type"] == "dashboard"):
        attrs = obj["attributes"]
        json.loads(attrs["optionsJSON"])
        json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
        panels = dashboard_panels(obj)
        assert panels, obj["id"]
        refs = {r["name"]: r for r in obj["references"]}
        seen: set[str] = set()
        cells: set[tuple[int, int]] = set()
        for p in panels:
            assert p["panelIndex"] not in seen
            seen.add(p["panelIndex"])
            g = p["gridData"]
            assert g["i"] == p["panelIndex"] and g["x"] >= 0 and g["x"] + g["w"] <= 48 and g["h"] > 0
            area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not (area & cells), f"{obj['id']}: panel {p['panelIndex']} overlaps another"
            cells |= area
            ref = refs[f"{p['panelIndex']}:{p['panelRefName']}"]
            assert ref["type"] == p["type"]
            assert (ref["type"], ref["id"]) in BY_KEY
        assert len(refs) == len(panels)


def test_dashboard_contents() -> None:
    def panel_titles(dash_id: str) -> set[str]:
        dash = BY_KEY[("dashboard", dash_id)]
        return {BY_KEY[(r["type"], r["id"])]["attributes"]["title"] for r in dash["references"]}

    assert panel_titles("sysmon-dashboard-overview") == {
        "Events over time by action",
        "Top hosts",
        "Top process images by SHA256",
        "stats count by Image, Hashes",
        "Process creations",
    }
    assert panel_titles("sysmon-dashboard-alerts") == {
        "Alerts over time by rule",
        "Alerts by severity",
        "Open alerts by rule and host",
        "Open alerts",
        "Log integrity alerts",
    }
    open_alerts = BY_KEY[("search", "sysmon-search-open-alerts")]["attributes"]["columns"]
    for col in ("rule.name", "host.name", "process.executable", "alert.intel.matched_values"):
        assert col in open_alerts
    assert "alert.spread.patient_zero" in open_alerts
    integrity = BY_KEY[("search", "sysmon-search-log-integrity-alerts")]["attributes"]["columns"]
    for col in ("host.name", "winlog.channel", "alert.gap.first_missing", "alert.gap.last_missing"):
        assert col in integrity
    assert panel_titles("sysmon-dashboard-hunt") == {
        "Unknown executables",
        "Unknown loaded modules",
        "Unknown domains",
        "Unknown destination IPs",
        "Retro-hunt alerts by feed and rule",
        "Retro-hunt alerts",
        "Log integrity alerts by rule, host and channel",
    }


def test_hunt_stack_tables_show_only_unknown_rows_of_their_stack() -> None:
    from detectors.hunt.saved import DEFAULT_STACKS

    for name, saved in DEFAULT_STACKS.items():
        obj = BY_KEY[("search", f"sysmon-search-stack-{name}")]
        kql = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]
        assert kql == f"stack.name:{name} and stack.allowlisted:false"
        # the by-fields first, then the figures; rarest first as `hunt stack --unknown --rare`
        assert obj["attributes"]["columns"][: len(saved.fields)] == list(saved.fields)
        assert obj["attributes"]["sort"] == [["stack.count", "asc"]]


@pytest.mark.parametrize("obj", ALL, ids=lambda o: f"{o['type']}:{o['id']}")
def test_every_field_used_is_mapped_for_the_data_views_index(obj: dict[str, Any]) -> None:
    views = [obj] if obj["type"] == "index-pattern" else data_view_of(OBJECTS, obj)
    used = fields_used(obj)
    if obj["type"] != "dashboard":
        assert len(views) == 1, obj["id"]
    if not used:
        return
    mapping = _mapping_for(views[0])
    unmapped = [(f, where) for f, where in used if _field_type(mapping, f) is None]
    assert unmapped == [], f"{obj['id']} ({views[0]['attributes']['title']})"
    for f, where in used:
        kind = _field_type(mapping, f)
        if where == "timeFieldName":
            assert kind == "date", f
        if where == "sort" or where.startswith("layer "):
            assert kind in AGGREGATABLE, (obj["id"], f, kind)
    if obj["type"] == "lens":
        for layer in lens_layers(obj).values():
            for col in layer["columns"].values():
                if col["operationType"] == "date_histogram":
                    assert _field_type(mapping, col["sourceField"]) == "date"


def test_field_check_catches_an_unmapped_field() -> None:
    obj = json.loads(json.dumps(BY_KEY[("search", "sysmon-search-dns-queries")]))
    obj["attributes"]["columns"].append("dns.question.nmae")
    mapping = _mapping_for(data_view_of(OBJECTS, obj)[0])
    assert [f for f, _ in fields_used(obj) if _field_type(mapping, f) is None] == ["dns.question.nmae"]
    # and an alerts-only field is not mapped for the events view
    assert _field_type(mapping, "alert.status") is None


# ------------------------------------------------------------------------------------ KQL
@pytest.mark.parametrize(
    ("kql", "lucene", "fields"),
    [
        ("", "", ()),
        ("event.code:1", "event.code:1", ("event.code",)),
        ("event.code : 1", "event.code:1", ("event.code",)),
        (
            "event.kind:alert and alert.status:open",
            "event.kind:alert AND alert.status:open",
            ("event.kind", "alert.status"),
        ),
        ("event.code:3 OR (event.code:22 AND NOT host.name:WS01)", None, ("event.code", "host.name")),
        (
            'process.executable:"C:\\\\Windows\\\\cmd.exe"',
            'process.executable:"C:\\\\Windows\\\\cmd.exe"',
            None,
        ),
        ("host.name:WS01.corp.example", "host.name:WS01.corp.example", None),
        ("destination.ip:10.0.0.1", "destination.ip:10.0.0.1", None),
        ("rule.id:intel-ip-connection", "rule.id:intel\\-ip\\-connection", None),
        ("winlog.event_data.RuleName:x", "winlog.event_data.RuleName:x", None),
        ("alert.retro.hunt:*", "_exists_:alert.retro.hunt", ("alert.retro.hunt",)),
        ("not (a:* or b:1)", "NOT (_exists_:a OR b:1)", ("a", "b")),
    ],
)
def test_kql_subset_translates(kql: str, lucene: str | None, fields: tuple[str, ...] | None) -> None:
    parsed = parse_kql(kql)
    if lucene is not None:
        assert parsed.lucene == lucene
    if fields is not None:
        assert parsed.fields == fields


def test_kql_operators_keep_their_precedence() -> None:
    assert kql_to_lucene("a:1 or b:2 and not c:3") == "a:1 OR b:2 AND NOT c:3"
    assert kql_to_lucene("(a:1 or b:2) and c:3") == "(a:1 OR b:2) AND c:3"


@pytest.mark.parametrize(
    "kql",
    [
        "cmd.exe",  # bare word (free text)
        "process.name:cmd*",  # wildcard
        "process.name:*x",  # wildcard after the star
        "process.name:x*",  # wildcard
        "*:x",  # any field
        "destination.port > 1024",  # range
        "event.code:(1 or 3)",  # value lists
        "event.code:1 event.code:3",  # implicit operator
        "(event.code:1",
        "event.code:1)",
        "event.code:1 and",
        "and event.code:1",
        "event.code:",
        'event.code:"1',
        "process.parent:{ name:x }",
        "not",
    ],
)
def test_kql_outside_the_subset_is_rejected(kql: str) -> None:
    with pytest.raises(KibanaError):
        parse_kql(kql)


# ---------------------------------------------------------------------------------- prefix
def test_with_prefix_renames_titles_ids_and_references_only() -> None:
    other = with_prefix(OBJECTS, "acme-sec")
    assert [o["type"] for o in other.all()] == [o["type"] for o in ALL]
    by_key = other.by_key()
    for o in other.all():
        assert str(o["id"]).startswith("acme-sec-")
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in by_key
    titles = {o["attributes"]["title"] for o in other.all() if o["type"] == "index-pattern"}
    assert titles == {
        "acme-sec-events*",
        "acme-sec-alerts*",
        "acme-sec-intel-indicators",
        "acme-sec-hunt-stack",
    }
    dashboards = {o["attributes"]["title"] for o in other.all() if o["type"] == "dashboard"}
    assert dashboards == {"Sysmon overview (acme-sec)", "Sysmon alerts (acme-sec)", "Sysmon hunt (acme-sec)"}
    # the hunt tables read the prefix's own saved stacks
    stacks = by_key[("search", "acme-sec-search-stack-executables")]["references"]
    assert [r["id"] for r in stacks] == ["acme-sec-hunt-stack"]
    for before, after in zip(ALL, other.all(), strict=True):
        assert fields_used(before) == fields_used(after)  # field names (e.g. sysmon.dns.status) stay
    assert with_prefix(OBJECTS, "sysmon").all() == ALL
    assert load_objects().all() == ALL, "with_prefix must not change its input"


@pytest.mark.parametrize("bad", ["", "Upper", "-x", "a b", "a/b", "a*"])
def test_with_prefix_rejects_bad_prefixes(bad: str) -> None:
    with pytest.raises(ConfigError):
        with_prefix(OBJECTS, bad)


def test_load_objects_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "x.ndjson").write_text('{"type":"search","id":"a","attributes":{}}\n{not json\n')
    with pytest.raises(KibanaError, match=r"x\.ndjson \(line 2\)"):
        load_objects(tmp_path)
    (tmp_path / "x.ndjson").write_text('{"id":"a"}\n')
    with pytest.raises(KibanaError, match="line 1"):
        load_objects(tmp_path)


# ------------------------------------------------------------------------------------- CLI
def test_cli_export_writes_prefixed_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["kibana", "export", "--prefix", "lab", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted(OBJECTS.files)
    written = load_objects(out)
    assert written.all() == with_prefix(OBJECTS, "lab").all()
    assert "summary: files=4 objects=" in res.output


def test_cli_export_to_stdout_and_prefix_from_env() -> None:
    res = CliRunner().invoke(main, ["kibana", "export"], env={"SYSMON_INDEX_PREFIX": "envp"})
    assert res.exit_code == 0, res.output
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert objs == with_prefix(OBJECTS, "envp").all()
    # data views come first, so a single-file import resolves every reference in order
    assert objs[0]["type"] == "index-pattern"


def test_cli_export_refuses_the_project_folder() -> None:
    res = CliRunner().invoke(main, ["kibana", "export", "--out", str(kibana_dir())])
    assert res.exit_code != 0 and "refusing" in res.output


def test_saved_objects_round_trip_as_ndjson() -> None:
    lines = OBJECTS.ndjson().decode().splitlines()
    assert len(lines) == len(ALL)
    assert SavedObjects({"x": [json.loads(line) for line in lines]}).all() == ALL
