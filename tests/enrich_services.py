"""Loopback stand-ins for VirusTotal v3, MalwareBazaar and CIRCL hashlookup that answer in each
service's documented format — errors, 429 and quota exhaustion included — so enrichment tests
never leave the machine. One server, a path prefix per service:

* ``/vt/api/v3/files/{hash}`` — ``x-apikey`` checked (401 ``WrongCredentialsError``); 200 with
  ``data.attributes.last_analysis_stats``, 404 ``NotFoundError``, 429 ``QuotaExceededError`` once
  ``vt_quota`` requests are spent (with ``Retry-After`` when ``retry_after`` is set), 500
  ``TransientError`` for hashes in ``vt_broken``.
* ``/mb/api/v1/`` — form ``query=get_info&hash=…``, ``Auth-Key`` checked (``unknown_auth_key``);
  ``query_status`` ``ok`` with ``data[]`` or ``hash_not_found``.
* ``/circl/lookup/{algo}/{hash}`` and ``/circl/bulk/{algo}`` — 200 with the known file's record
  (``KnownMalicious`` when listed so), 404 ``{"message": "Non existing SHA-256"}``; every request
  answered ``circl_fail`` (e.g. 429) when set.

Every request is recorded (method, path, headers, body) for the tests to inspect.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeServices:
    vt_key: str = "vt-secret-key-0123456789"
    mb_key: str = "mb-secret-key-abcdef"
    vt_files: dict[str, dict[str, int]] = field(default_factory=dict)  # hash → last_analysis_stats
    vt_quota: int | None = None  # requests answered before 429
    vt_broken: set[str] = field(default_factory=set)
    retry_after: int | None = None
    mb_samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    circl_known: dict[str, dict[str, Any]] = field(default_factory=dict)
    circl_fail: int | None = None  # every CIRCL request answered with this status
    requests: list[Recorded] = field(default_factory=list)
    base: str = ""

    def count(self, prefix: str) -> int:
        return sum(r.path.startswith(prefix) for r in self.requests)

    def urls(self) -> list[str]:
        return [f"--url=virustotal={self.base}/vt/api/v3", f"--url=malwarebazaar={self.base}/mb/api/v1/",
                f"--url=circl={self.base}/circl"]  # fmt: skip

    # --------------------------------------------------------------- answers: (status, body, headers)
    def vt(self, h: str, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if headers.get("x-apikey") != self.vt_key:
            return 401, _vt_error("WrongCredentialsError", "Wrong API key"), {}
        if self.vt_quota is not None:
            if self.vt_quota <= 0:
                extra = {"Retry-After": str(self.retry_after)} if self.retry_after else {}
                return 429, _vt_error("QuotaExceededError", "Quota exceeded"), extra
            self.vt_quota -= 1
        if h in self.vt_broken:
            return 500, _vt_error("TransientError", "Transient error"), {}
        stats = self.vt_files.get(h)
        if stats is None:
            return 404, _vt_error("NotFoundError", f'File "{h}" not found'), {}
        attrs = {
            "sha256": h if len(h) == 64 else "f" * 64,
            "last_analysis_stats": {"harmless": 0, "type-unsupported": 4, "suspicious": 0,
                                    "confirmed-timeout": 0, "timeout": 0, "failure": 0, **stats},
            "first_submission_date": 1700000000,
            "last_analysis_date": 1760000000,
            "popular_threat_classification": {"suggested_threat_label": "trojan.agenttesla/msil"},
        }  # fmt: skip
        return 200, {"data": {"type": "file", "id": attrs["sha256"], "attributes": attrs}}, {}

    def mb(self, form: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if headers.get("auth-key") != self.mb_key:
            return 401, {"query_status": "unknown_auth_key"}, {}
        if form.get("query") != ["get_info"]:
            return 200, {"query_status": "unknown_query"}, {}
        h = (form.get("hash") or [""])[0]
        sample = self.mb_samples.get(h)
        if sample is None:
            return 200, {"query_status": "hash_not_found"}, {}
        data = {
            "sha256_hash": h,
            "file_type": "exe",
            "file_name": "invoice.exe",
            "signature": "AgentTesla",
            "first_seen": "2024-01-02 03:04:05",
            "last_seen": None,
            "tags": ["exe", "AgentTesla"],
            **sample,
        }
        return 200, {"query_status": "ok", "data": [data]}, {}

    def circl_entry(self, h: str) -> dict[str, Any] | None:
        entry = self.circl_known.get(h)
        if entry is None:
            return None
        return {"SHA-256": h.upper(), "MD5": "A" * 32, "SHA-1": "B" * 40, "FileName": "notepad.exe",
                "FileSize": "12345", "source": "NSRL", "db": "nsrl_modern_rds", "hashlookup:trust": 80,
                **entry}  # fmt: skip


def _vt_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _handler(fake: FakeServices) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any, headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> tuple[dict[str, str], bytes]:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            fake.requests.append(Recorded(self.command, self.path, headers, body))
            return headers, body

        def do_GET(self) -> None:
            headers, _ = self._record()
            parts = self.path.strip("/").split("/")
            if self.path.startswith("/vt/api/v3/files/"):
                self._answer(*fake.vt(parts[-1], headers))
            elif self.path.startswith("/circl/") and fake.circl_fail:
                self._answer(fake.circl_fail, {"message": "Too many requests"}, {})
            elif self.path.startswith("/circl/lookup/"):
                entry = fake.circl_entry(parts[-1].lower())
                if entry is None:
                    self._answer(404, {"message": "Non existing SHA-256", "query": parts[-1]}, {})
                else:
                    self._answer(200, entry, {})
            else:
                self._answer(404, {"message": "no such endpoint"}, {})

        def do_POST(self) -> None:
            headers, body = self._record()
            if self.path == "/mb/api/v1/":
                self._answer(*fake.mb(parse_qs(body.decode()), headers))
            elif self.path.startswith("/circl/") and fake.circl_fail:
                self._answer(fake.circl_fail, {"message": "Too many requests"}, {})
            elif self.path.startswith("/circl/bulk/"):
                hashes = json.loads(body)["hashes"]
                out = [fake.circl_entry(h.lower()) or {"message": "Non existing SHA-256", "query": h}
                       for h in hashes]  # fmt: skip
                self._answer(200, out, {})
            else:
                self._answer(404, {"message": "no such endpoint"}, {})

    return Handler


@contextmanager
def serving(fake: FakeServices) -> Iterator[FakeServices]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
