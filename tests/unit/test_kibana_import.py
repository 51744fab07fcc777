"""``sysmon-detect kibana import``: the request our client builds, checked against a tiny local
HTTP server on 127.0.0.1 that records what it receives and answers like Kibana's import API.

This tests our client (URL, method, headers, auth, multipart body, error handling), not Kibana:
whether Kibana 9 accepts the objects cannot be checked on this machine."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from detectors.cli import main
from detectors.kibana.client import KibanaAuth, build_import_request, import_objects, ssl_context
from detectors.kibana.objects import KibanaError, load_objects, with_prefix
from shipper.errors import ConfigError

OBJECTS = load_objects()


@dataclass
class Recorder:
    status: int = 200
    answer: dict[str, Any] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def kibana() -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            rec.requests.append(
                {"method": "POST", "path": self.path, "headers": dict(self.headers.items()), "body": body}
            )
            payload = json.dumps(rec.answer).encode()
            self.send_response(rec.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _file_part(req: dict[str, Any]) -> tuple[str, str, bytes]:
    """(field name, filename, content) of the single multipart part."""
    head = f"Content-Type: {req['headers']['Content-Type']}\r\n\r\n".encode()
    msg = BytesParser(policy=HTTP).parsebytes(head + req["body"])
    assert msg.is_multipart()
    parts = list(msg.iter_parts())
    assert len(parts) == 1
    part = parts[0]
    content = part.get_payload(decode=True)
    assert isinstance(content, bytes)
    return str(part.get_param("name", header="content-disposition")), str(part.get_filename()), content


def _ok(n: int) -> dict[str, Any]:
    return {"success": True, "successCount": n, "successResults": []}


def test_import_posts_multipart_ndjson_with_xsrf_and_api_key(kibana: tuple[str, Recorder]) -> None:
    url, rec = kibana
    objects = with_prefix(OBJECTS, "lab")
    rec.answer = _ok(len(objects.all()))
    res = import_objects(objects, url + "/", KibanaAuth(api_key="a2V5OnNlY3JldA=="))
    assert res.success_count == len(objects.all()) and res.errors == []
    [req] = rec.requests
    assert req["method"] == "POST"
    assert req["path"] == "/api/saved_objects/_import?overwrite=true"
    h = {k.lower(): v for k, v in req["headers"].items()}
    assert h["kbn-xsrf"]
    assert h["authorization"] == "ApiKey a2V5OnNlY3JldA=="
    assert h["content-type"].startswith("multipart/form-data; boundary=")
    name, filename, content = _file_part(req)
    assert name == "file" and filename.endswith(".ndjson")
    sent = [json.loads(line) for line in content.decode().splitlines()]
    assert sent == objects.all()
    assert sent[0]["type"] == "index-pattern" and sent[0]["attributes"]["title"] == "lab-events*"


def test_basic_auth_from_environment_and_space(kibana: tuple[str, Recorder]) -> None:
    url, rec = kibana
    rec.answer = _ok(1)
    auth = KibanaAuth.from_env({"ES_USERNAME": "elastic", "ES_PASSWORD": "pa:ss"})
    import_objects(OBJECTS, url, auth, space="soc team")
    [req] = rec.requests
    assert req["path"] == "/s/soc%20team/api/saved_objects/_import?overwrite=true"
    h = {k.lower(): v for k, v in req["headers"].items()}
    assert h["authorization"] == "Basic ZWxhc3RpYzpwYTpzcw=="  # elastic:pa:ss


def test_api_key_wins_and_secrets_come_from_files(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("file-key\n")
    auth = KibanaAuth.from_env({"KIBANA_API_KEY_FILE": str(key), "ES_USERNAME": "u", "ES_PASSWORD": "p"})
    assert auth.header() == "ApiKey file-key"
    assert KibanaAuth.from_env({}).header() is None
    with pytest.raises(ConfigError, match="ES_PASSWORD"):
        KibanaAuth.from_env({"ES_USERNAME": "u"}).header()


def test_cli_import_reports_summary(kibana: tuple[str, Recorder]) -> None:
    url, rec = kibana
    rec.answer = _ok(len(OBJECTS.all()))
    res = CliRunner().invoke(
        main,
        ["kibana", "import", "--prefix", "lab"],
        env={"KIBANA_URL": url, "KIBANA_API_KEY": "s3cr3t-api-key"},
    )
    assert res.exit_code == 0, res.output
    assert f"summary: imported={len(OBJECTS.all())} errors=0" in res.output
    _, _, content = _file_part(rec.requests[0])
    assert b'"id":"lab-dashboard-overview"' in content
    assert "s3cr3t" not in res.output  # the key is never printed
    assert {k.lower(): v for k, v in rec.requests[0]["headers"].items()}[
        "authorization"
    ] == "ApiKey s3cr3t-api-key"


def test_cli_import_lists_objects_kibana_refused(kibana: tuple[str, Recorder]) -> None:
    url, rec = kibana
    rec.answer = {
        "success": False,
        "successCount": 16,
        "errors": [
            {
                "id": "sysmon-dashboard-alerts",
                "type": "dashboard",
                "title": "Sysmon alerts",
                "error": {
                    "type": "missing_references",
                    "references": [{"type": "lens", "id": "sysmon-lens-x"}],
                },
            }
        ],
    }
    res = CliRunner().invoke(main, ["kibana", "import", "--kibana-url", url], env={"KIBANA_API_KEY": "k"})
    assert res.exit_code == 1
    assert (
        "dashboard sysmon-dashboard-alerts (Sysmon alerts): missing_references — missing lens sysmon-lens-x"
        in (res.output)
    )
    assert "summary: imported=16 errors=1" in res.output


@pytest.mark.parametrize(
    ("status", "hint"), [(401, "KIBANA_API_KEY"), (403, "privilege"), (404, "wrong URL")]
)
def test_http_errors_are_clear(kibana: tuple[str, Recorder], status: int, hint: str) -> None:
    url, rec = kibana
    rec.status = status
    rec.answer = {"statusCode": status, "error": "nope", "message": "refused"}
    with pytest.raises(KibanaError, match=rf"HTTP {status}.*{hint}.*refused"):
        import_objects(OBJECTS, url, KibanaAuth(api_key="k"))


def test_unreachable_and_bad_urls_are_clear() -> None:
    with pytest.raises(KibanaError, match="cannot reach Kibana"):
        import_objects(OBJECTS, "http://127.0.0.1:9", KibanaAuth(), timeout=5)
    with pytest.raises(ConfigError, match="expected http"):
        build_import_request(OBJECTS, "kibana:5601", KibanaAuth())


def test_tls_is_verified() -> None:
    ctx = ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    with pytest.raises(ConfigError, match="CA certificates"):
        ssl_context("/nonexistent/ca.pem")
