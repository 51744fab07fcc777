"""MISP feed events (``{"Event": {...}}``) and MISP feed folders (``manifest.json`` +
``<uuid>.json``).

An event is one JSON document and is loaded whole; a feed folder is read one event at a time.
Composite attribute types (``domain|ip``, ``filename|sha256``, ``ip-dst|port``) are split on
``|``; attributes with ``to_ids`` false are skipped and reported (kind ``skipped``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from shipper.errors import InputError

from ..model import IndicatorType, ParseIssue, ParseItem, ParseOptions, clean, iso_utc, parse_port
from .base import FormatSpec, Meta, ParseContext, first_lines, load_json_document

# attribute type -> what each "|"-separated part is: an indicator type, "port" or "filename"
MISP_TYPES: dict[str, tuple[str, ...]] = {
    "ip-dst": ("ip",),
    "ip-src": ("ip",),
    "ip-dst|port": ("ip", "port"),
    "ip-src|port": ("ip", "port"),
    "domain": ("domain",),
    "hostname": ("domain",),
    "domain|ip": ("domain", "ip"),
    "hostname|port": ("domain", "port"),
    "url": ("url",),
    "md5": ("md5",),
    "sha1": ("sha1",),
    "sha256": ("sha256",),
    "filename|md5": ("filename", "md5"),
    "filename|sha1": ("filename", "sha1"),
    "filename|sha256": ("filename", "sha256"),
}
_INDICATOR_PARTS: frozenset[str] = frozenset({"ip", "domain", "url", "md5", "sha1", "sha256"})
_UUID = re.compile(r'"uuid"\s*:\s*"([^"]+)"')
_GALAXY_MALWARE = re.compile(r'misp-galaxy:(?:malpedia|mitre-malware|ransomware|tool)="([^"]+)"')
_MANIFEST = re.compile(r'^\s*\{\s*"[0-9a-fA-F-]{36}"\s*:\s*\{')


def _sniff_misp(head: str, filename: str | None) -> bool:
    return bool(re.match(r'\s*\{\s*"Event"\s*:', head) or _MANIFEST.match(head))


def parse_misp(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseItem]:
    loaded = load_json_document(lines, ctx)
    if isinstance(loaded, ParseIssue):
        yield loaded
        return
    text, doc = loaded
    if not isinstance(doc, dict) or not isinstance(doc.get("Event"), dict):
        if isinstance(doc, dict) and _MANIFEST.match(text):
            yield ctx.issue(1, "a MISP feed manifest: parse the feed folder (parse_path) instead")
        else:
            yield ctx.issue(1, "not a MISP event (no 'Event' object)")
        return
    event: dict[str, Any] = doc["Event"]
    where = first_lines(text, _UUID)
    tags = _tag_names(event)
    base: dict[str, Any] = {
        "event_uuid": event.get("uuid"),
        "info": clean(event["info"]) if isinstance(event.get("info"), str) else None,
        "date": event.get("date"),
        "tags": tags,
    }
    attributes: list[Any] = list(event.get("Attribute") or ())
    for obj in event.get("Object") or ():
        if isinstance(obj, dict):
            attributes.extend(obj.get("Attribute") or ())
    for attr in attributes:
        if not isinstance(attr, dict):
            yield ctx.issue(1, "attribute is not a JSON object")
            continue
        line = where.get(str(attr.get("uuid")), 1)
        yield from _attribute(ctx, attr, line, base)


def _tag_names(holder: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        t["name"] for t in holder.get("Tag") or () if isinstance(t, dict) and isinstance(t.get("name"), str)
    )


def _attribute(
    ctx: ParseContext, attr: dict[str, Any], line: int, base: dict[str, Any]
) -> Iterator[ParseItem]:
    atype, value = attr.get("type"), attr.get("value")
    raw = f"{atype}: {value}"
    if not isinstance(atype, str) or not isinstance(value, str):
        yield ctx.issue(line, "attribute without a string type and value", raw)
        return
    if attr.get("deleted") in (True, "1", 1):
        yield ctx.issue(line, f"deleted {atype} attribute skipped", raw, "skipped")
        return
    if attr.get("to_ids") in (False, "0", 0, "false"):
        yield ctx.issue(line, f"{atype} attribute with to_ids false skipped", raw, "skipped")
        return
    parts_spec = MISP_TYPES.get(atype)
    if parts_spec is None:
        yield ctx.issue(line, f"attribute type {atype!r} not supported", raw, "unsupported")
        return
    parts = value.split("|") if len(parts_spec) > 1 else [value]
    if len(parts) != len(parts_spec):
        yield ctx.issue(line, f"{atype} value should have {len(parts_spec)} parts separated by '|'", raw)
        return
    ports: tuple[int, ...] = ()
    extra: dict[str, str] = {"misp_type": atype}
    for what, part in zip(parts_spec, parts, strict=True):
        if what == "port":
            try:
                port = parse_port(part)
            except ValueError as exc:
                yield ctx.issue(line, str(exc), raw)
                return
            ports = (port,) if port is not None else ()
        elif what == "filename":
            extra["file_name"] = part
    meta, issues = _meta(ctx, attr, line, base, raw)
    yield from issues
    for key in ("event_uuid",):
        if isinstance(base.get(key), str):
            extra["misp_event"] = base[key]
    if isinstance(attr.get("uuid"), str):
        extra["misp_attribute"] = attr["uuid"]
    if isinstance(attr.get("category"), str):
        extra["misp_category"] = attr["category"]
    meta["ports"] = ports
    meta["extra"] = tuple(sorted(extra.items()))
    for what, part in zip(parts_spec, parts, strict=True):
        if what in _INDICATOR_PARTS:
            kind: IndicatorType = what  # type: ignore[assignment]
            yield from ctx.emit(kind, part, line, raw, meta)


def _meta(
    ctx: ParseContext, attr: dict[str, Any], line: int, base: dict[str, Any], raw: str
) -> tuple[Meta, list[ParseItem]]:
    issues: list[ParseItem] = []
    times: dict[str, str | None] = {}
    for key, value in (
        ("first_seen", attr.get("first_seen") or base.get("date")),
        ("last_seen", attr.get("last_seen")),
    ):
        try:
            times[key] = iso_utc(value if isinstance(value, str) else None)
        except ValueError as exc:
            times[key] = None
            issues.append(ctx.issue(line, f"{key}: {exc} (indicator kept without it)", raw))
    tags = (*base["tags"], *_tag_names(attr))
    malware = next((m.group(1) for t in tags if (m := _GALAXY_MALWARE.search(t))), None)
    comment = attr.get("comment")
    meta: Meta = {
        "first_seen": times["first_seen"],
        "last_seen": times["last_seen"],
        "description": (clean(comment) if isinstance(comment, str) else None) or base["info"],
        "malware": malware,
        "tags": tuple(dict.fromkeys(tags)),
    }
    return meta, issues


def parse_misp_feed(
    directory: Path, *, source_name: str, options: ParseOptions | None = None
) -> Iterator[ParseItem]:
    """Every event listed in ``directory/manifest.json``, one at a time.

    Issues name the event file they come from. A missing or unreadable manifest raises
    :class:`InputError` (nothing can be loaded); a missing event file is an issue.
    """
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the MISP feed manifest: {exc}", source=str(manifest_path)) from None
    if not isinstance(manifest, dict):
        raise InputError("MISP feed manifest is not a JSON object", source=str(manifest_path))
    key_lines = _key_lines(manifest_path.read_text(encoding="utf-8-sig"))
    for event_uuid in manifest:
        event_file = directory / f"{event_uuid}.json"
        if not re.fullmatch(r"[0-9a-fA-F-]{36}", event_uuid) or not event_file.is_file():
            yield ParseIssue(
                line=key_lines.get(event_uuid, 1),
                message=f"event {event_uuid} listed in the manifest has no {event_uuid}.json",
                raw=event_uuid,
                source=str(manifest_path),
            )
            continue
        ctx = ParseContext(source_name, options, location=str(event_file))
        with event_file.open(encoding="utf-8-sig", errors="replace", newline="") as stream:
            yield from parse_misp(stream, ctx)


def _key_lines(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    line, last = 1, 0
    for m in re.finditer(r'"([^"]+)"\s*:\s*\{', text):
        line += text.count("\n", last, m.start())
        last = m.start()
        lines.setdefault(m.group(1), line)
    return lines


FORMATS = (
    FormatSpec(
        "misp",
        parse_misp,
        sniff=_sniff_misp,
        priority=10,
        description="MISP feed event JSON (or a feed folder)",
    ),
)
