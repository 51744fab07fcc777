"""Hostile feeds on loopback: a gzip bomb without newlines, a bomb of short lines, an endless
stream. Each ends in a clear error (no traceback), bounded memory, and the old list kept."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from detectors.cli import main
from shipper.es import ClusterSettings

_MIB = 1 << 20


def _gzip_stream(piece: bytes, total: int) -> bytes:
    """``total`` bytes of ``piece`` repeated, gzip-compressed without holding them."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = piece * (_MIB // len(piece))
    out = [comp.compress(block) for _ in range(total // len(block))]
    return b"".join([*out, comp.flush()])


class _Feeds(ThreadingHTTPServer):
    routes: dict[str, bytes]


def _handler(server: _Feeds) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            if self.path == "/endless":
                self.end_headers()
                chunk = b"203.0.113.9\n" * 8192
                try:
                    while True:
                        self.wfile.write(chunk)
                except OSError:
                    return
            body = server.routes[self.path]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def feeds() -> Iterator[tuple[str, dict[str, bytes]]]:
    server = _Feeds(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.RequestHandlerClass = _handler(server)
    server.routes = {"/good.txt": b"198.51.100.1\n198.51.100.2\n"}
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.routes
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def env(es_settings: ClusterSettings, prefix: str, tmp_path: Path) -> dict[str, str]:
    return {
        "ES_URL": es_settings.url,
        "SYSMON_INDEX_PREFIX": prefix,
        "SYSMON_INTEL_CACHE": str(tmp_path / "c"),
    }


def _intel(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["intel", *args], env=env, catch_exceptions=False)


def _feed_file(tmp_path: Path, url: str, **caps: int) -> Path:
    extra = "".join(f"    {k}: {v}\n" for k, v in caps.items())
    path = tmp_path / "feeds.yml"
    path.write_text(f"feeds:\n  - name: f\n    location: {url}\n{extra}", encoding="utf-8")
    return path


def _good_first(env: dict[str, str], url: str, tmp_path: Path) -> None:
    first = _intel(env, "load", "f", "--config", str(_feed_file(tmp_path, f"{url}/good.txt")))
    assert first.exit_code == 0, first.output


def _old_list_kept(env: dict[str, str]) -> None:
    assert _intel(env, "check", "198.51.100.2").exit_code == 0
    listed = _intel(env, "list").output
    assert "generation=1" in listed and "ip 2" in listed, listed


def test_a_gzip_bomb_without_newlines_stops_at_the_line_cap_in_bounded_memory(
    env: dict[str, str], feeds: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    url, routes = feeds
    routes["/bomb.gz"] = _gzip_stream(b"\0", 600 * _MIB)  # 600 MiB of zeros, ~600 KB on the wire
    _good_first(env, url, tmp_path)
    feed = _feed_file(tmp_path, f"{url}/bomb.gz")
    code = (
        "import resource, sys\n"
        "from detectors.cli import main\n"
        "try:\n    main()\nfinally:\n"
        "    print('peak-rss-kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "intel", "load", "f", "--config", str(feed)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 1, proc.stderr
    assert "line 1 is longer than 16777216 characters (max_line)" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    peak_mib = int(proc.stderr.rsplit("peak-rss-kib ", 1)[1].split()[0]) / 1024
    assert peak_mib < 1024, f"peak RSS {peak_mib:.0f} MiB"
    _old_list_kept(env)


def test_decompressed_size_line_count_and_the_deadline_are_caps(
    env: dict[str, str], feeds: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    url, routes = feeds
    routes["/lines.gz"] = _gzip_stream(b"203.0.113.7\n", 64 * _MIB)  # ~5.6M short lines
    _good_first(env, url, tmp_path)

    big = _intel(
        env, "load", "f", "--config", str(_feed_file(tmp_path, f"{url}/lines.gz", max_bytes=8 * _MIB))
    )
    assert big.exit_code == 1
    assert f"feed is larger than {8 * _MIB} bytes decompressed (max_bytes)" in big.output

    many = _intel(
        env, "load", "f", "--config", str(_feed_file(tmp_path, f"{url}/lines.gz", max_lines=100_000))
    )
    assert many.exit_code == 1 and "feed has more than 100000 lines (max_lines)" in many.output

    slow = _intel(env, "load", "f", "--config", str(_feed_file(tmp_path, f"{url}/lines.gz", deadline=1)))
    assert slow.exit_code == 1 and "the load took longer than its 1s deadline" in slow.output
    _old_list_kept(env)


def test_an_endless_download_stops_at_max_bytes(
    env: dict[str, str], feeds: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    url, _ = feeds
    _good_first(env, url, tmp_path)
    endless = _intel(
        env, "load", "f", "--config", str(_feed_file(tmp_path, f"{url}/endless", max_bytes=4 * _MIB))
    )
    assert endless.exit_code == 1
    assert f"download is larger than {4 * _MIB} bytes (max_bytes)" in endless.output
    assert not any(p.name.startswith("tmp") for p in (tmp_path / "c").rglob("*")), "a partial body was left"
    _old_list_kept(env)
