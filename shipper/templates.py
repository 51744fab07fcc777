"""Index templates for event indices: two component templates and one composable index template.

The JSON lives in ``mappings/`` (one file each); ``{prefix}`` in names and patterns is replaced by
the configured index prefix. The mappings file is generated from the mapper's own field table
(``shipper.sysmon.fields``) with ``python -m shipper.templates generate`` and a test checks that
the two agree, so every field the mapper emits is mapped explicitly:

- ``dynamic: false`` at the root (unknown fields are kept in ``_source`` but never get a type),
  date and numeric detection off;
- ``winlog.event_data`` is the one dynamic object, and a dynamic template maps every value under
  it as ``keyword`` — whatever its JSON type, so no EventData name can create a conflict;
- paths and command lines are ``keyword`` + ``.text`` + ``.caseless`` (lower-case normaliser);
  the other keywords Sigma compares case-insensitively (``CASELESS_ONLY_PATHS``) and every
  ``winlog.event_data`` value get ``.caseless`` alone;
- keywords ignore values above 8191 characters (Lucene's 32 KiB term limit) rather than reject
  the document; ``event.original`` is stored, not indexed.

``install`` is idempotent: each template carries a hash of its own body in ``_meta`` and is
written only when missing or different.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import orjson
from elasticsearch import ApiError, Elasticsearch

from shipper.assets import asset_dir
from shipper.errors import ClusterError

#: Above the stock ``logs`` template (priority 500).
PRIORITY: Final = 600
KEYWORD_IGNORE_ABOVE: Final = 8191
NORMALIZER: Final = "caseless"
MANAGED_BY: Final = "sysmon-detect"

COMPONENT_FILES: Final = ("events-settings.json", "events-mappings.json")
INDEX_TEMPLATE_FILE: Final = "events-index-template.json"

Change = Literal["created", "updated", "unchanged"]


def mappings_dir() -> Path:
    """The templates folder (``shipper.assets``): the source tree's ``mappings/``, the installed
    package's copy, or ``SYSMON_MAPPINGS_DIR``."""
    return asset_dir("mappings")


# --------------------------------------------------------------------------------------------
# generation from the mapper's field table


CASELESS: Final = {"type": "keyword", "normalizer": NORMALIZER, "ignore_above": KEYWORD_IGNORE_ABOVE}


def _leaf(dotted: str, es_type: str, multi: frozenset[str], caseless: frozenset[str]) -> dict[str, Any]:
    if dotted == "event.original":
        return {"type": "keyword", "index": False, "doc_values": False}
    if es_type in ("match_only_text", "text"):
        return {"type": "text"}
    if es_type == "keyword":
        spec: dict[str, Any] = {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
        if dotted in multi:
            spec["fields"] = {"text": {"type": "text"}, "caseless": dict(CASELESS)}
        elif dotted in caseless:
            spec["fields"] = {"caseless": dict(CASELESS)}
        return spec
    if es_type in ("long", "date", "ip", "boolean"):
        return {"type": es_type}
    raise ValueError(f"{dotted}: type {es_type!r} is not one the project uses")


def generate_mappings() -> dict[str, Any]:
    """The ``mappings`` component template body, built from ``EMITTED_FIELDS``."""
    from shipper.envelope import FIELDS as ENVELOPE_FIELDS
    from shipper.sysmon.fields import CASELESS_ONLY_PATHS, EMITTED_FIELDS, MULTI_FIELD_PATHS

    fields: dict[str, str] = dict(EMITTED_FIELDS)
    fields["event.ingested"] = "date"  # set by the sink on every document
    fields.update(ENVELOPE_FIELDS)  # agent.*, tags: added by the shipper's sink
    props: dict[str, Any] = {}
    for dotted in sorted(fields):
        es_type = fields[dotted]
        parts = dotted.split(".")
        node = props
        for part in parts[:-1]:
            obj = node.setdefault(part, {"properties": {}})
            node = obj.setdefault("properties", {})
        if parts[-1] == "*":
            # winlog.event_data.*: an object whose every subfield is a keyword (dynamic template)
            continue
        node[parts[-1]] = _leaf(dotted, es_type, MULTI_FIELD_PATHS, CASELESS_ONLY_PATHS)
    winlog = props["winlog"]["properties"]
    winlog["event_data"] = {"type": "object", "dynamic": True}
    props["labels"] = {"type": "object", "dynamic": True}  # labels.*: the run's, all keywords
    return {
        "template": {
            # the normaliser lives with the mappings that use it: a component template is
            # validated on its own
            "settings": {
                "analysis": {
                    "normalizer": {NORMALIZER: {"type": "custom", "char_filter": [], "filter": ["lowercase"]}}
                }
            },
            "mappings": {
                "dynamic": False,
                "date_detection": False,
                "numeric_detection": False,
                "dynamic_templates": [
                    {
                        "winlog_event_data_as_keyword": {
                            "path_match": "winlog.event_data.*",
                            "match_mapping_type": "*",
                            "mapping": {
                                "type": "keyword",
                                "ignore_above": KEYWORD_IGNORE_ABOVE,
                                "fields": {"caseless": dict(CASELESS)},
                            },
                        }
                    },
                    {
                        "labels_as_keyword": {
                            "path_match": "labels.*",
                            "match_mapping_type": "*",
                            "mapping": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
                        }
                    },
                ],
                "properties": props,
            },
        },
        "_meta": {
            "description": "ECS fields of Sysmon event documents (generated from shipper.sysmon.fields)"
        },
    }


def generate_settings() -> dict[str, Any]:
    return {
        "template": {
            "settings": {
                "index": {
                    "number_of_shards": 1,
                    "number_of_replicas": 0,
                    "mapping": {"total_fields": {"limit": 2000}},
                },
            }
        },
        "_meta": {"description": "settings of Sysmon event indices (shards and replicas from the config)"},
    }


def generate_index_template() -> dict[str, Any]:
    return {
        "index_patterns": ["{prefix}-events-*"],
        "priority": PRIORITY,
        "composed_of": ["{prefix}-events-settings", "{prefix}-events-mappings"],
        "template": {"aliases": {"{prefix}-events": {}}},
        "_meta": {"description": "Sysmon events as ECS, one index per month of @timestamp"},
    }


def write_files(target: Path | None = None) -> list[Path]:
    """Regenerate the JSON files in ``mappings/``."""
    target = target or mappings_dir()
    target.mkdir(parents=True, exist_ok=True)
    out = []
    for name, body in (
        ("events-settings.json", generate_settings()),
        ("events-mappings.json", generate_mappings()),
        (INDEX_TEMPLATE_FILE, generate_index_template()),
    ):
        path = target / name
        path.write_text(json.dumps(body, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        out.append(path)
    return out


# --------------------------------------------------------------------------------------------
# loading with the prefix and the index settings filled in


@dataclass(frozen=True)
class Template:
    kind: Literal["component", "index"]
    name: str
    body: dict[str, Any]


def fill_prefix(value: Any, prefix: str) -> Any:
    """``value`` (a template file's JSON) with every ``{prefix}`` in its strings and keys filled."""
    if isinstance(value, str):
        return value.replace("{prefix}", prefix)
    if isinstance(value, list):
        return [fill_prefix(v, prefix) for v in value]
    if isinstance(value, dict):
        return {fill_prefix(k, prefix): fill_prefix(v, prefix) for k, v in value.items()}
    return value


def _load(name: str) -> dict[str, Any]:
    path = mappings_dir() / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ClusterError(f"template file {path} is missing (set SYSMON_MAPPINGS_DIR?)") from exc
    if not isinstance(data, dict):
        raise ClusterError(f"{path}: a template must be a JSON object")
    return data


def _hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def event_templates(prefix: str, *, shards: int = 1, replicas: int = 0) -> list[Template]:
    """Component templates first, then the index template (the order they must be installed)."""
    out: list[Template] = []
    for fname in COMPONENT_FILES:
        body = fill_prefix(_load(fname), prefix)
        if fname == "events-settings.json":
            index = body["template"]["settings"]["index"]
            index["number_of_shards"] = shards
            index["number_of_replicas"] = replicas
        out.append(Template("component", f"{prefix}-{fname.removesuffix('.json')}", body))
    out.append(Template("index", f"{prefix}-events", fill_prefix(_load(INDEX_TEMPLATE_FILE), prefix)))
    for t in out:
        meta = dict(t.body.get("_meta") or {})
        meta.pop("hash", None)
        meta["managed_by"] = MANAGED_BY
        body = {k: v for k, v in t.body.items() if k != "_meta"}
        meta["hash"] = _hash({"body": body, "meta": meta})
        t.body["_meta"] = meta
    return out


def events_alias(prefix: str) -> str:
    return f"{prefix}-events"


def events_index(prefix: str, suffix: str) -> str:
    return f"{prefix}-events-{suffix}"


def index_suffix(timestamp: str | None) -> str | None:
    """``2024-03-05T…`` → ``2024.03`` (the monthly index of the event's own time)."""
    if not timestamp or len(timestamp) < 7 or timestamp[4] != "-":
        return None
    return f"{timestamp[0:4]}.{timestamp[5:7]}"


# --------------------------------------------------------------------------------------------
# installing


def _existing_hash(client: Elasticsearch, t: Template) -> str | None:
    c = client.options(ignore_status=404)
    if t.kind == "component":
        resp = dict(c.cluster.get_component_template(name=t.name))
        items = resp.get("component_templates") or []
        key = "component_template"
    else:
        resp = dict(c.indices.get_index_template(name=t.name))
        items = resp.get("index_templates") or []
        key = "index_template"
    for item in items:
        if item.get("name") == t.name:
            meta = item.get(key, {}).get("_meta") or {}
            return str(meta.get("hash", "")) or "unknown"
    return None


def install(
    client: Elasticsearch, prefix: str, *, shards: int = 1, replicas: int = 0
) -> list[tuple[Template, Change]]:
    """Create or update the event templates; say per template what changed."""
    results: list[tuple[Template, Change]] = []
    for t in event_templates(prefix, shards=shards, replicas=replicas):
        try:
            current = _existing_hash(client, t)
            if current == t.body["_meta"]["hash"]:
                results.append((t, "unchanged"))
                continue
            if t.kind == "component":
                client.cluster.put_component_template(name=t.name, body=t.body)
            else:
                client.indices.put_index_template(name=t.name, body=t.body)
        except ApiError as exc:
            raise ClusterError(
                f"installing {t.kind} template {t.name} failed: HTTP {exc.meta.status} {exc.message}"
                f" {_reason(exc)}".rstrip()
            ) from exc
        results.append((t, "created" if current is None else "updated"))
    return results


def _reason(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("reason", ""))
    return ""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["generate"]:
        print("usage: python -m shipper.templates generate", file=sys.stderr)
        return 2
    for path in write_files():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
