"""Ground truth and sample intel for a generated day.

:class:`TruthCollector` watches the event stream as it is written (record ids are only known
then) and keeps the malicious events, which are few; :func:`write_intel` writes the feed and
allowlist files that match the scenario. ``truth.json`` says, per detection category, exactly
which events must alert; everything else in the data is benign background that must not.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from samples import catalog as C
from samples.day import (
    CATEGORIES,
    PRELOG_IMAGES,
    T_ATTACK,
    T_SPREAD,
    attack_hosts,
    host_names,
)
from samples.model import SysmonEvent

TRUTH_SCHEMA_VERSION = 1

DESCRIPTIONS: dict[str, str] = {
    "intel_ip": "event 3 whose DestinationIp is in intel/bad-ips.txt (the IP or the CIDR)",
    "intel_ip_dns_answer": "event 22 whose QueryResults resolve to an IP in intel/bad-ips.txt",
    "intel_domain": "event 22 whose QueryName (or its registered domain) is in intel/bad-domains.txt",
    "bad_hash_executed": "event 1 whose SHA256 is in intel/bad-hashes.csv (the dropper, every host)",
    "bad_dll_loaded": "event 7 whose SHA256 is in intel/bad-hashes.csv",
    "unsigned_driver_first_load": "event 6 with Signed=false, first load of that hash",
    "lsass_access": "event 10 on lsass.exe by a non-allowlisted image (GrantedAccess 0x1010)",
    "create_remote_thread": "event 8 (the background has none)",
    "raw_disk_read": "event 9 (the background has none)",
    "office_spawns_shell": "event 1 of cmd.exe/powershell.exe whose parent is an Office application",
    "process_tampering": "event 25 (the background has none)",
    "new_binary_not_allowlisted": "event 1/6/7 whose SHA256 is in no allowlist (intel/allowlist-hashes.txt)",
    "spread": "event 1 of the dropper hash: first appearance per host, patient zero first",
}

BACKGROUND_GUARANTEES = (
    "no destination IP, DNS answer or query name in the intel files",
    "no hash from intel/bad-hashes.csv; every event 1/6/7 hash is in intel/allowlist-hashes.txt",
    "drivers (event 6) all signed with SignatureStatus Valid",
    "lsass.exe is accessed only by MsMpEng.exe and svchost.exe with GrantedAccess 0x1000",
    "no event 8, 9 or 25",
    "Office applications spawn only splwow64.exe (never a shell)",
)


def _iso(utc_time: str) -> str:
    return utc_time.replace(" ", "T") + "Z"


def _ref(ev: SysmonEvent) -> dict[str, Any]:
    d = ev.data
    ref: dict[str, Any] = {
        "host": ev.host,
        "record_id": ev.record_id,
        "event_id": ev.event_id,
        "utc_time": _iso(d["UtcTime"]),
    }
    guid = ev.process_guid
    if guid:
        ref["process_guid"] = guid
    image = d.get("Image") or d.get("SourceImage") or d.get("ImageLoaded")
    if image:
        ref["image"] = image
    return ref


class TruthCollector:
    """Collects references to the malicious events of a stream."""

    def __init__(self, *, events: int, seed: int, hosts: int, start: datetime) -> None:
        self.events = events
        self.seed = seed
        self.hosts = hosts
        self.start = start
        self.seen = 0
        self.malicious: list[dict[str, Any]] = []
        self.by_category: dict[str, list[dict[str, Any]]] = {c: [] for c in CATEGORIES}

    def observe(self, ev: SysmonEvent) -> None:
        self.seen += 1
        if not ev.tags:
            return
        ref = _ref(ev)
        ref["categories"] = [t for t in ev.tags if t != T_ATTACK]
        self.malicious.append(ref)
        for tag in ev.tags:
            if tag in self.by_category:
                self.by_category[tag].append(ref)

    def to_dict(self) -> dict[str, Any]:
        pz, targets = attack_hosts(self.hosts)
        categories: dict[str, Any] = {}
        for cat in CATEGORIES:
            refs = [{k: v for k, v in r.items() if k != "categories"} for r in self.by_category[cat]]
            categories[cat] = {"description": DESCRIPTIONS[cat], "events": refs}
        spread_hosts: list[dict[str, Any]] = []
        for r in self.by_category[T_SPREAD]:
            if all(s["host"] != r["host"] for s in spread_hosts):
                spread_hosts.append(
                    {
                        "host": r["host"],
                        "first_seen": r["utc_time"],
                        "record_id": r["record_id"],
                        "process_guid": r.get("process_guid"),
                    }
                )
        categories[T_SPREAD].update(
            sha256=C.DROPPER.sha256.lower(),
            patient_zero=spread_hosts[0]["host"] if spread_hosts else pz,
            hosts=spread_hosts,
        )
        return {
            "schema_version": TRUTH_SCHEMA_VERSION,
            "generator": {
                "events": self.seen,
                "seed": self.seed,
                "hosts": host_names(self.hosts),
                "start": self.start.isoformat(),
            },
            "scenario": {
                "domain": C.DOMAIN_FQDN,
                "patient_zero": pz,
                "spread_targets": targets,
                "dropper_sha256": C.DROPPER.sha256.lower(),
                "malicious_dll_sha256": C.BAD_DLL.sha256.lower(),
                "unsigned_driver_sha256": C.BAD_DRIVER.sha256.lower(),
                "bad_ips": [C.BAD_IP, *C.BAD_CIDR_IPS],
                "bad_cidr": C.BAD_CIDR,
                "bad_domains": [C.BAD_C2_DOMAIN, C.BAD_DOWNLOAD_DOMAIN],
                "bad_registered_domain": C.BAD_REGISTERED_DOMAIN,
                "prelog_images": sorted(PRELOG_IMAGES),
            },
            "malicious_events": self.malicious,
            "categories": categories,
            "background_guarantees": list(BACKGROUND_GUARANTEES),
        }

    def write(self, out_dir: Path) -> Path:
        path = out_dir / "truth.json"
        path.write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        return path


def write_intel(out_dir: Path, start: datetime) -> list[Path]:
    """Write ``intel/`` (feeds and allowlists) matching the scenario; returns the paths."""
    intel = out_dir / "intel"
    intel.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    files["bad-ips.txt"] = (
        "# sample intel feed: malicious IPs and networks (documentation ranges, RFC 5737)\n"
        f"{C.BAD_IP}\n{C.BAD_CIDR}\n"
    )
    files["bad-domains.txt"] = (
        "# sample intel feed: malicious domains\n"
        f"{C.BAD_REGISTERED_DOMAIN}\n{C.BAD_C2_DOMAIN}\n{C.BAD_DOWNLOAD_DOMAIN}\n"
    )
    seen = f"{start:%Y-%m-%d}"
    rows = []
    for b, sig, fname, ftype in (
        (C.DROPPER, "InvoiceLoader", "invoice_update.exe", "exe"),
        (C.BAD_DLL, "InvoiceLoader", "winupd.dll", "dll"),
    ):
        cols = [
            f"{seen} 06:12:44",
            b.sha256.lower(),
            b.md5.lower(),
            b.sha1.lower(),
            "sample",
            fname,
            ftype,
            "application/x-dosexec",
            sig,
            "n/a",
            "n/a",
            b.imphash.lower(),
            "n/a",
            "n/a",
        ]
        rows.append(", ".join(f'"{c}"' for c in cols))
    files["bad-hashes.csv"] = (
        "################################################################\n"
        "# MalwareBazaar-style data dump (CSV): sample feed for the demo #\n"
        "################################################################\n"
        "#\n"
        '# "first_seen_utc","sha256_hash","md5_hash","sha1_hash","reporter","file_name",'
        '"file_type_guess","mime_type","signature","clamav","vtpercent","imphash","ssdeep","tlsh"\n'
        + "\n".join(rows)
        + "\n"
    )
    benign = C.ALL_BENIGN
    files["allowlist-hashes.txt"] = "# sha256 of every benign binary in the sample background\n" + "".join(
        sorted({b.sha256.lower() + "\n" for b in benign})
    )
    files["allowlist-images.txt"] = "# paths of every benign binary in the sample background\n" + "".join(
        sorted({b.path + "\n" for b in benign})
    )
    paths = []
    for name, text in files.items():
        p = intel / name
        p.write_bytes(text.encode("utf-8"))
        paths.append(p)
    return paths
