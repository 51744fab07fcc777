"""docker-compose.yml: versions match the dev node, nothing listens beyond loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from devtools.es import ES_VERSION

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_elastic_images_pin_the_dev_node_version() -> None:
    services = _compose()["services"]
    images = {name: svc["image"] for name, svc in services.items() if "image" in svc}
    elastic = {n: i for n, i in images.items() if "docker.elastic.co" in i}
    assert {"es01", "kibana"} <= set(elastic)
    for name, image in elastic.items():
        assert image.rsplit(":", 1)[1] == ES_VERSION, f"{name} uses {image}, dev node is {ES_VERSION}"


def test_no_service_publishes_beyond_loopback() -> None:
    for name, svc in _compose()["services"].items():
        for port in svc.get("ports", []):
            spec = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}"
            assert spec.startswith("127.0.0.1:"), f"service {name} publishes {spec!r} beyond 127.0.0.1"


def test_security_is_on_and_secrets_come_from_env() -> None:
    es01 = _compose()["services"]["es01"]
    env = es01["environment"]
    assert "xpack.security.enabled=true" in env
    assert "xpack.security.http.ssl.enabled=true" in env
    assert any(e.startswith("ELASTIC_PASSWORD=${") for e in env)
    assert es01["healthcheck"]["test"]
