"""Kibana saved objects that ship with the project (``kibana/*.ndjson``): load, re-prefix,
export, import, and translate what they run into Elasticsearch requests.

The files are Kibana 9 saved-object exports (one JSON object per line) written for the default
index prefix ``sysmon``: three data views (``index-pattern``), saved searches (``search``),
Lens visualisations (``lens``) and two dashboards that embed them by reference. Ids carry the
prefix too (``sysmon-…``), so the objects of two prefixes can live side by side in one space.

* :func:`load_objects` reads the files (errors name file and line); :func:`with_prefix` rewrites
  data view titles, ids and references for another prefix; :func:`export` writes them.
* :func:`import_objects` posts them to Kibana's ``/api/saved_objects/_import?overwrite=true``
  (multipart, ``kbn-xsrf``, API key or basic auth, TLS verified).
* :func:`kql_to_lucene`, :func:`search_request` and :func:`lens_request` turn a saved search or a
  Lens layer into the query / aggregation Kibana would send, for the subset of KQL and Lens
  operations the shipped objects use (anything else is rejected). Tests run them against a real
  node; Kibana itself is not involved.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import click

from shipper import config
from shipper.assets import asset_dir
from shipper.clifail import fail as _fail
from shipper.errors import ConfigError, SysmonError


def kibana_dir() -> Path:
    """The saved objects shipped with the project (``shipper.assets``; ``SYSMON_KIBANA_DIR``)."""
    return asset_dir("kibana")


DEFAULT_PREFIX = "sysmon"
#: Import order: data views first, then what refers to them.
FILE_ORDER = ("data-views.ndjson", "sysmon-overview.ndjson", "sysmon-alerts.ndjson")
#: Lens's pseudo field of the ``count`` operation.
RECORDS_FIELD = "___records___"


class KibanaError(SysmonError):
    """A saved-object file that cannot be used, or a Kibana request that failed."""


@dataclass(frozen=True, slots=True)
class SavedObjects:
    """The saved objects of each file, in file order."""

    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def all(self) -> list[dict[str, Any]]:
        return [o for objs in self.files.values() for o in objs]

    def by_key(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(str(o["type"]), str(o["id"])): o for o in self.all()}

    def ndjson(self) -> bytes:
        """Every object, one JSON line each (the import body)."""
        return b"".join(_line(o) for o in self.all())


def _line(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _ordered(names: Iterable[str]) -> list[str]:
    rank = {n: i for i, n in enumerate(FILE_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def load_objects(directory: Path | None = None) -> SavedObjects:
    """Every ``*.ndjson`` file of ``directory`` (default: the shipped objects); a bad line raises
    naming file and line."""
    directory = directory or kibana_dir()
    paths = {p.name: p for p in directory.glob("*.ndjson")}
    if not paths:
        raise KibanaError("no saved-object files (*.ndjson)", source=str(directory))
    files: dict[str, list[dict[str, Any]]] = {}
    for name in _ordered(paths):
        objs: list[dict[str, Any]] = []
        with paths[name].open(encoding="utf-8") as fh:
            for n, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise KibanaError(
                        f"not JSON: {exc}", source=str(paths[name]), position=f"line {n}"
                    ) from None
                if not isinstance(obj, dict) or not all(k in obj for k in ("type", "id", "attributes")):
                    raise KibanaError(
                        "not a saved object (needs type, id, attributes)",
                        source=str(paths[name]),
                        position=f"line {n}",
                    )
                objs.append(obj)
        files[name] = objs
    return SavedObjects(files)


def check_prefix(prefix: str) -> str:
    return config.check_prefix(prefix, "--prefix")


def _reprefix(value: str, prefix: str) -> str:
    head = f"{DEFAULT_PREFIX}-"
    return f"{prefix}-{value[len(head) :]}" if value.startswith(head) else value


def with_prefix(objects: SavedObjects, prefix: str) -> SavedObjects:
    """A copy for index prefix ``prefix``: data view titles (index patterns), every id and every
    reference id that starts with ``sysmon-`` get the new prefix; titles of data views and
    dashboards name it. Nothing else changes (field names such as ``sysmon.dns.status`` stay)."""
    check_prefix(prefix)
    if prefix == DEFAULT_PREFIX:
        return SavedObjects({k: copy.deepcopy(v) for k, v in objects.files.items()})
    files: dict[str, list[dict[str, Any]]] = {}
    for name, objs in objects.files.items():
        out: list[dict[str, Any]] = []
        for src in objs:
            obj = copy.deepcopy(src)
            obj["id"] = _reprefix(str(obj["id"]), prefix)
            for ref in obj.get("references", []):
                ref["id"] = _reprefix(str(ref["id"]), prefix)
            attrs = obj["attributes"]
            if obj["type"] == "index-pattern":
                attrs["title"] = ",".join(_reprefix(p, prefix) for p in str(attrs["title"]).split(","))
                if attrs.get("name"):
                    attrs["name"] = f"{attrs['name']} ({prefix})"
            elif obj["type"] == "dashboard":
                attrs["title"] = f"{attrs['title']} ({prefix})"
            out.append(obj)
        files[name] = out
    return SavedObjects(files)


def export(objects: SavedObjects, out_dir: Path) -> list[Path]:
    """Write each file of ``objects`` into ``out_dir`` (created); refuses the project's own
    ``kibana/`` folder, whose files must keep the default prefix."""
    if out_dir.resolve() == kibana_dir().resolve():
        raise KibanaError("refusing to overwrite the project's own saved objects", source=str(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, objs in objects.files.items():
        path = out_dir / name
        tmp = path.with_suffix(".ndjson.tmp")
        tmp.write_bytes(b"".join(_line(o) for o in objs))
        tmp.replace(path)
        written.append(path)
    return written


# ------------------------------------------------------------------------------------ import
@dataclass(frozen=True, slots=True)
class KibanaAuth:
    """``api_key`` (sent as ``Authorization: ApiKey …``) wins over ``username``/``password``."""

    api_key: str | None = None
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KibanaAuth:
        """``KIBANA_API_KEY``, else ``ES_USERNAME``/``ES_PASSWORD``; each also as ``*_FILE``."""
        env = os.environ if env is None else env

        def secret(name: str) -> str | None:
            if env.get(name):
                return env[name]
            path = env.get(f"{name}_FILE")
            if path:
                try:
                    with open(path, encoding="utf-8") as fh:
                        return fh.read().strip() or None
                except OSError as exc:
                    raise ConfigError(f"cannot read {name}_FILE: {exc.strerror}", source=path) from None
            return None

        api_key = secret("KIBANA_API_KEY")
        if api_key:
            return cls(api_key=api_key)
        return cls(username=secret("ES_USERNAME"), password=secret("ES_PASSWORD"))

    def header(self) -> str | None:
        if self.api_key:
            return f"ApiKey {self.api_key}"
        if self.username:
            if self.password is None:
                raise ConfigError("ES_USERNAME is set but ES_PASSWORD is not")
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
            return f"Basic {token}"
        return None


@dataclass(frozen=True, slots=True)
class ImportRequest:
    url: str
    headers: dict[str, str]
    body: bytes


def import_url(kibana_url: str, space: str | None = None) -> str:
    parts = urlsplit(kibana_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"Kibana URL {kibana_url!r}: expected http(s)://host:port")
    base = kibana_url.rstrip("/")
    if space and space != "default":
        base += f"/s/{quote(space, safe='')}"
    return f"{base}/api/saved_objects/_import?overwrite=true"


def build_import_request(
    objects: SavedObjects,
    kibana_url: str,
    auth: KibanaAuth,
    *,
    space: str | None = None,
    boundary: str | None = None,
) -> ImportRequest:
    """The multipart ``POST`` Kibana's import API expects: one ``file`` part holding the NDJSON."""
    boundary = boundary or f"sysmon-detect-{uuid.uuid4().hex}"
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="file"; filename="sysmon-detect.ndjson"\r\n',
            b"Content-Type: application/ndjson\r\n\r\n",
            objects.ndjson(),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    headers = {
        "kbn-xsrf": "sysmon-detect",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Accept": "application/json",
    }
    authorization = auth.header()
    if authorization:
        headers["Authorization"] = authorization
    return ImportRequest(import_url(kibana_url, space), headers, body)


@dataclass(frozen=True, slots=True)
class ImportResult:
    success_count: int
    errors: list[str]


def ssl_context(ca_certs: str | None = None) -> ssl.SSLContext:
    """Certificates and host names verified (system trust store, plus ``ca_certs``)."""
    ctx = ssl.create_default_context()
    if ca_certs:
        try:
            ctx.load_verify_locations(cafile=ca_certs)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load CA certificates: {exc}", source=ca_certs) from None
    return ctx


def _describe(err: Mapping[str, Any]) -> str:
    detail = err.get("error") or {}
    kind = detail.get("type", "error")
    title = err.get("title") or (err.get("meta") or {}).get("title", "")
    text = f"{err.get('type')} {err.get('id')} ({title}): {kind}"
    missing = detail.get("references") or []
    if missing:
        text += " — missing " + ", ".join(f"{r.get('type')} {r.get('id')}" for r in missing)
    if detail.get("message"):
        text += f": {detail['message']}"
    return text


def import_objects(
    objects: SavedObjects,
    kibana_url: str,
    auth: KibanaAuth,
    *,
    space: str | None = None,
    ca_certs: str | None = None,
    timeout: float = 60.0,
) -> ImportResult:
    """Post the objects to Kibana; raises :class:`KibanaError` with what Kibana said when the
    request fails, and returns per-object errors when Kibana imported some but not all."""
    req = build_import_request(objects, kibana_url, auth, space=space)
    request = urllib.request.Request(req.url, data=req.body, headers=req.headers, method="POST")
    context = ssl_context(ca_certs) if req.url.startswith("https:") else None
    where = req.url.split("?", 1)[0]
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")[:500]
        hint = {
            401: " (check KIBANA_API_KEY or ES_USERNAME/ES_PASSWORD)",
            403: " (the user needs the saved-objects management privilege in this space)",
            404: " (wrong URL or space?)",
        }.get(exc.code, "")
        raise KibanaError(f"Kibana answered HTTP {exc.code}{hint}: {body}", source=where) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise KibanaError(
                f"TLS certificate not trusted ({reason.verify_message}); pass --ca-certs", source=where
            ) from None
        raise KibanaError(f"cannot reach Kibana: {reason}", source=where) from None
    except (TimeoutError, OSError) as exc:
        raise KibanaError(f"cannot reach Kibana: {exc}", source=where) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise KibanaError(
            f"Kibana answered something that is not JSON: {raw[:200]!r}", source=where
        ) from None
    errors = [_describe(e) for e in data.get("errors") or []]
    return ImportResult(int(data.get("successCount", 0)), errors)


# ---------------------------------------------------------------------------- KQL subset
_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<lp>\() | (?P<rp>\)) |
        (?P<quoted>"(?:[^"\\]|\\.)*") |
        (?P<colon>:) |
        (?P<word>[^\s():"\\*<>{}]+)
    )""",
    re.VERBOSE,
)
_FIELD_RE = re.compile(r"^[A-Za-z_@][A-Za-z0-9_@.]*$")
_LUCENE_SPECIAL = re.compile(r'([+\-=&|><!(){}\[\]^"~*?:\\/ ])')
_OPS = {"and": "AND", "or": "OR", "not": "NOT"}


def _tokens(query: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(query, pos)
        if not m or m.end() == pos:
            raise KibanaError(f"KQL {query!r}: unsupported syntax at {query[pos:].strip()[:20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


@dataclass(frozen=True, slots=True)
class KqlQuery:
    """A parsed query of the supported KQL subset: ``field:value`` / ``field : "quoted value"``
    terms joined by ``and``/``or``/``not`` and parentheses (no wildcards, ranges or bare words)."""

    lucene: str
    fields: tuple[str, ...]


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.toks = _tokens(query)
        self.i = 0
        self.fields: list[str] = []

    def fail(self, why: str) -> KibanaError:
        return KibanaError(f"KQL {self.query!r}: {why} (supported: field:value, and/or/not, parentheses)")

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise self.fail("unexpected end")
        self.i += 1
        return tok

    def op(self, name: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].lower() == name:
            self.i += 1
            return True
        return False

    def expr(self) -> str:  # or-expression
        parts = [self.conj()]
        while self.op("or"):
            parts.append(self.conj())
        return " OR ".join(parts)

    def conj(self) -> str:
        parts = [self.unary()]
        while self.op("and"):
            parts.append(self.unary())
        return " AND ".join(parts)

    def unary(self) -> str:
        if self.op("not"):
            return f"NOT {self.unary()}"
        kind, text = self.take()
        if kind == "lp":
            inner = self.expr()
            if self.take()[0] != "rp":
                raise self.fail("missing ')'")
            return f"({inner})"
        if kind != "word" or text.lower() in _OPS or not _FIELD_RE.match(text):
            raise self.fail(f"expected a field name, got {text!r}")
        if self.take()[0] != "colon":
            raise self.fail(f"expected ':' after {text!r} (bare words are not supported)")
        vkind, value = self.take()
        if vkind == "quoted":
            literal = json.loads(value)
        elif vkind == "word" and value.lower() not in _OPS:
            literal = value
        else:
            raise self.fail(f"expected a value after {text}:")
        self.fields.append(text)
        return f'{text}:"{_escape_phrase(literal)}"' if vkind == "quoted" else f"{text}:{_escape(literal)}"

    def parse(self) -> KqlQuery:
        if not self.toks:
            return KqlQuery("", ())
        lucene = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return KqlQuery(lucene, tuple(dict.fromkeys(self.fields)))


def _escape(value: str) -> str:
    return _LUCENE_SPECIAL.sub(r"\\\1", value)


def _escape_phrase(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def parse_kql(query: str) -> KqlQuery:
    """Parse the supported KQL subset; raises :class:`KibanaError` for anything else."""
    return _Parser(query).parse()


def kql_to_lucene(query: str) -> str:
    """The Lucene ``query_string`` equivalent of a supported KQL query ('' for an empty one)."""
    return parse_kql(query).lucene


def es_query(
    kql: str, *, time_field: str | None = None, time_range: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The Elasticsearch query Kibana's request amounts to: the KQL as ``query_string`` (strict:
    not lenient, AND default) plus the time filter on the data view's time field."""
    filters: list[dict[str, Any]] = []
    lucene = kql_to_lucene(kql)
    if lucene:
        filters.append({"query_string": {"query": lucene, "default_operator": "AND", "lenient": False}})
    if time_field and time_range:
        filters.append({"range": {time_field: {"gte": time_range[0], "lte": time_range[1]}}})
    return {"bool": {"filter": filters}} if filters else {"match_all": {}}


# -------------------------------------------------------------------- what the objects run
def search_source(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = (obj.get("attributes") or {}).get("kibanaSavedObjectMeta") or {}
    raw = meta.get("searchSourceJSON") or "{}"
    data: dict[str, Any] = json.loads(raw)
    return data


def _data_view(objects: SavedObjects, obj: Mapping[str, Any], ref_name: str) -> dict[str, Any]:
    for ref in obj.get("references", []):
        if ref.get("name") == ref_name and ref.get("type") == "index-pattern":
            view = objects.by_key().get(("index-pattern", str(ref["id"])))
            if view is None:
                raise KibanaError(f"{obj['type']} {obj['id']}: data view {ref['id']} not found")
            return view
    raise KibanaError(f"{obj['type']} {obj['id']}: no reference {ref_name!r}")


@dataclass(frozen=True, slots=True)
class SearchRequest:
    index: str
    query: dict[str, Any]
    sort: list[dict[str, str]]
    columns: list[str]


def search_request(
    objects: SavedObjects, obj: Mapping[str, Any], *, time_range: tuple[str, str] | None = None
) -> SearchRequest:
    """The request Discover sends for a saved search: its data view's index pattern, its KQL and
    filters (only an empty filter list is supported), its sort and columns."""
    src = search_source(obj)
    if src.get("filter"):
        raise KibanaError(f"search {obj['id']}: filters are not supported, use the KQL query")
    q = src.get("query") or {}
    if q.get("language", "kuery") != "kuery":
        raise KibanaError(f"search {obj['id']}: only KQL queries are supported")
    view = _data_view(objects, obj, str(src.get("indexRefName", "")))
    vattrs = view["attributes"]
    attrs = obj["attributes"]
    return SearchRequest(
        index=str(vattrs["title"]),
        query=es_query(
            str(q.get("query", "")), time_field=vattrs.get("timeFieldName"), time_range=time_range
        ),
        sort=[{str(f): str(d)} for f, d in attrs.get("sort", [])],
        columns=list(attrs.get("columns", [])),
    )


@dataclass(frozen=True, slots=True)
class LensRequest:
    """One Lens layer as an aggregation request; ``buckets`` are the bucket column ids in nesting
    order (the aggregation names), ``metrics`` the metric column ids (``count`` = ``doc_count``)."""

    layer_id: str
    index: str
    query: dict[str, Any]
    aggs: dict[str, Any]
    buckets: list[str]
    metrics: list[str]
    columns: dict[str, dict[str, Any]]


def lens_layers(obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    state = obj["attributes"]["state"]
    layers: dict[str, dict[str, Any]] = state["datasourceStates"]["formBased"]["layers"]
    return layers


def _bucket_agg(col_id: str, col: Mapping[str, Any], interval: str) -> dict[str, Any]:
    op = col.get("operationType")
    params = col.get("params") or {}
    if op == "terms":
        order = params.get("orderBy") or {"type": "alphabetical"}
        direction = str(params.get("orderDirection", "desc"))
        if order.get("type") == "alphabetical":
            key = "_key"
        elif order.get("type") == "column":
            key = "_count"  # checked by the caller: the ordering column is a count
        else:
            raise KibanaError(f"column {col_id}: terms ordered by {order.get('type')!r} is not supported")
        terms: dict[str, Any] = {"field": col["sourceField"], "size": int(params.get("size", 5))}
        terms["order"] = {key: direction}
        if params.get("missingBucket"):
            terms["missing"] = "(missing value)"
        return {"terms": terms}
    if op == "date_histogram":
        value = str(params.get("interval", "auto"))
        hist: dict[str, Any] = {
            "field": col["sourceField"],
            "fixed_interval": interval if value == "auto" else value,
        }
        if params.get("includeEmptyRows"):
            hist["min_doc_count"] = 0
        return {"date_histogram": hist}
    raise KibanaError(f"column {col_id}: bucket operation {op!r} is not supported")


def lens_request(
    objects: SavedObjects,
    obj: Mapping[str, Any],
    layer_id: str,
    *,
    time_range: tuple[str, str] | None = None,
    auto_interval: str = "1h",
) -> LensRequest:
    """The aggregation Lens runs for ``layer_id`` of ``obj``: bucket columns (``terms``,
    ``date_histogram``) nested in ``columnOrder``, ``count`` metrics as ``doc_count``, the
    visualisation's KQL and the time filter. ``auto`` intervals become ``auto_interval`` (Kibana
    derives them from the time range). Other operations, filters and column filters are rejected."""
    state = obj["attributes"]["state"]
    if state.get("filters"):
        raise KibanaError(f"lens {obj['id']}: filters are not supported, use the KQL query")
    q = state.get("query") or {}
    if q.get("language", "kuery") != "kuery":
        raise KibanaError(f"lens {obj['id']}: only KQL queries are supported")
    layer = lens_layers(obj)[layer_id]
    columns: dict[str, dict[str, Any]] = layer["columns"]
    view = _data_view(objects, obj, f"indexpattern-datasource-layer-{layer_id}")
    vattrs = view["attributes"]
    buckets: list[str] = []
    metrics: list[str] = []
    for cid in layer["columnOrder"]:
        col = columns[cid]
        if col.get("filter"):
            raise KibanaError(f"lens {obj['id']} column {cid}: column filters are not supported")
        if col.get("isBucketed"):
            order = (col.get("params") or {}).get("orderBy") or {}
            if order.get("type") == "column" and columns[order["columnId"]].get("operationType") != "count":
                raise KibanaError(f"lens {obj['id']} column {cid}: ordering by a non-count column")
            buckets.append(cid)
        elif col.get("operationType") == "count":
            metrics.append(cid)
        else:
            raise KibanaError(
                f"lens {obj['id']} column {cid}: metric {col.get('operationType')!r} not supported"
            )
    aggs: dict[str, Any] = {}
    for cid in reversed(buckets):
        agg = _bucket_agg(cid, columns[cid], auto_interval)
        if aggs:
            agg["aggs"] = aggs
        aggs = {cid: agg}
    return LensRequest(
        layer_id=layer_id,
        index=str(vattrs["title"]),
        query=es_query(
            str(q.get("query", "")), time_field=vattrs.get("timeFieldName"), time_range=time_range
        ),
        aggs=aggs,
        buckets=buckets,
        metrics=metrics,
        columns=columns,
    )


def lens_rows(req: LensRequest, response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table Lens draws from the response: one row per leaf bucket, keyed by column id
    (date keys as ``key_as_string``), each count metric the bucket's ``doc_count``. Empty
    date buckets are kept, as Lens does with ``includeEmptyRows``."""
    rows: list[dict[str, Any]] = []

    def walk(node: Mapping[str, Any], depth: int, row: dict[str, Any]) -> None:
        if depth == len(req.buckets):
            rows.append({**row, **{m: int(node["doc_count"]) for m in req.metrics}})
            return
        cid = req.buckets[depth]
        for b in node[cid]["buckets"]:
            walk(b, depth + 1, {**row, cid: b.get("key_as_string", b["key"])})

    if not req.buckets:
        total = response["hits"]["total"]
        return [{m: int(total["value"] if isinstance(total, Mapping) else total) for m in req.metrics}]
    walk(response["aggregations"], 0, {})
    return rows


# ------------------------------------------------------------------------- field inventory
def dashboard_panels(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(obj["attributes"].get("panelsJSON") or "[]")
    return panels


def fields_used(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field, where)`` for every field ``obj`` uses: data view time field, saved-search
    columns, sort and KQL, Lens source fields and KQL, dashboard KQL. Lens's ``___records___``
    (the count pseudo field) is left out."""
    out: list[tuple[str, str]] = []
    attrs = obj.get("attributes") or {}
    kind = obj.get("type")
    if kind == "index-pattern":
        if attrs.get("timeFieldName"):
            out.append((str(attrs["timeFieldName"]), "timeFieldName"))
    elif kind in ("search", "dashboard"):
        src = search_source(obj)
        for f in parse_kql(str((src.get("query") or {}).get("query", ""))).fields:
            out.append((f, "query"))
        for f in attrs.get("columns", []):
            out.append((str(f), "columns"))
        for f, _ in attrs.get("sort", []):
            out.append((str(f), "sort"))
    elif kind == "lens":
        state = attrs["state"]
        for f in parse_kql(str((state.get("query") or {}).get("query", ""))).fields:
            out.append((f, "query"))
        for lid, layer in lens_layers(obj).items():
            for cid, col in layer["columns"].items():
                sf = col.get("sourceField")
                if sf and sf != RECORDS_FIELD:
                    out.append((str(sf), f"layer {lid} column {cid}"))
                flt = col.get("filter")
                if flt:
                    for f in parse_kql(str(flt.get("query", ""))).fields:
                        out.append((f, f"layer {lid} column {cid} filter"))
    return out


def references_of(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    refs: list[dict[str, Any]] = list(obj.get("references") or [])
    return refs


def data_view_of(objects: SavedObjects, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The data views ``obj`` reads (a dashboard: those of its panels)."""
    by_key = objects.by_key()
    views: list[dict[str, Any]] = []
    for ref in references_of(obj):
        target = by_key.get((str(ref.get("type")), str(ref.get("id"))))
        if target is None:
            continue
        if target["type"] == "index-pattern":
            views.append(target)
        elif obj["type"] == "dashboard":
            views.extend(data_view_of(objects, target))
    return list({v["id"]: v for v in views}.values())


# ------------------------------------------------------------------------------- commands
def _prefix(prefix: str | None) -> str:
    return check_prefix(prefix or os.environ.get("SYSMON_INDEX_PREFIX") or DEFAULT_PREFIX)


_prefix_option = click.option("--prefix", help="Index prefix (default: SYSMON_INDEX_PREFIX or sysmon).")


@click.group("kibana")
def kibana() -> None:
    """Kibana 9 saved objects: data views, saved searches, Lens visualisations, dashboards."""


@kibana.command("export")
@_prefix_option
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one NDJSON file per dashboard (and the data views) into DIR; default: all to stdout.",
)
@click.pass_context
def export_cmd(ctx: click.Context, prefix: str | None, out: Path | None) -> None:
    """Write the saved objects with the index prefix filled in (Kibana: Stack Management → Saved
    objects → Import, data-views.ndjson first)."""
    try:
        objects = with_prefix(load_objects(), _prefix(prefix))
        if out is None:
            click.echo(objects.ndjson().decode("utf-8"), nl=False)
            return
        for path in export(objects, out):
            click.echo(f"wrote {path}", err=True)
        click.echo(f"summary: files={len(objects.files)} objects={len(objects.all())}", err=True)
    except SysmonError as exc:
        _fail(ctx, exc)


@kibana.command("import")
@click.option(
    "--kibana-url", envvar="KIBANA_URL", required=True, help="e.g. https://kibana:5601 (or KIBANA_URL)."
)
@_prefix_option
@click.option("--space", help="Kibana space id (default: the default space).")
@click.option(
    "--ca-certs",
    envvar="KIBANA_CA_CERTS",
    type=click.Path(dir_okay=False),
    help="CA file for Kibana's certificate (or KIBANA_CA_CERTS); certificates are always verified.",
)
@click.pass_context
def import_cmd(
    ctx: click.Context, kibana_url: str, prefix: str | None, space: str | None, ca_certs: str | None
) -> None:
    """Import (overwrite) the saved objects into Kibana. Auth: KIBANA_API_KEY, else
    ES_USERNAME/ES_PASSWORD (each also as *_FILE)."""
    try:
        objects = with_prefix(load_objects(), _prefix(prefix))
        res = import_objects(objects, kibana_url, KibanaAuth.from_env(), space=space, ca_certs=ca_certs)
    except SysmonError as exc:
        _fail(ctx, exc)
    for err in res.errors:
        click.echo(f"error: {err}", err=True)
    click.echo(f"summary: imported={res.success_count} errors={len(res.errors)}", err=True)
    if res.errors:
        sys.exit(1)
