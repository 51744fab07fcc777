"""The saved objects that ship with the project (``kibana/*.ndjson``): load, re-prefix, export.

The files are Kibana 9 saved-object exports (one JSON object per line) written for the default
index prefix ``sysmon``: four data views (``index-pattern``: events, alerts, intel indicators,
saved stacks), saved searches (``search``), Lens visualisations (``lens``) and three dashboards
(overview, alerts, hunt) that embed them by reference. Ids carry the
prefix too (``sysmon-…``), so the objects of two prefixes can live side by side in one space.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipper import config
from shipper.assets import asset_dir
from shipper.errors import SysmonError


def kibana_dir() -> Path:
    """The saved objects shipped with the project (``shipper.assets``; ``SYSMON_KIBANA_DIR``)."""
    return asset_dir("kibana")


DEFAULT_PREFIX = "sysmon"
#: Import order: data views first, then what refers to them.
FILE_ORDER = ("data-views.ndjson", "sysmon-overview.ndjson", "sysmon-alerts.ndjson", "sysmon-hunt.ndjson")


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
