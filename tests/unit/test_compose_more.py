"""docker-compose.yml beyond versions and loopback ports (tests/unit/test_compose.py): the setup
service, health checks and the order they impose, named volumes, the shipper and detector
services, and no port reachable from other machines in any spelling."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _command(svc: dict[str, Any]) -> str:
    cmd = svc.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def _env(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, dict):
        return {str(k): str(v) for k, v in env.items()}
    return dict(str(e).split("=", 1) for e in env)


def _depends(svc: dict[str, Any]) -> dict[str, str]:
    deps = svc.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {k: v.get("condition", "service_started") for k, v in deps.items()}


def _split_colons(spec: str) -> list[str]:
    """Split a short-syntax spec on ``:``, keeping ``${VAR:-default}`` whole."""
    tokens: list[str] = []

    def hold(m: re.Match[str]) -> str:
        tokens.append(m.group(0))
        return f"\0{len(tokens) - 1}\0"

    held = re.sub(r"\$\{[^}]*\}", hold, spec)
    return [re.sub(r"\0(\d+)\0", lambda m: tokens[int(m.group(1))], part) for part in held.split(":")]


def _mounts(svc: dict[str, Any]) -> dict[str, str]:
    """container path → source, for short-syntax volumes."""
    out: dict[str, str] = {}
    for vol in svc.get("volumes", []):
        if isinstance(vol, dict):
            out[vol["target"]] = vol.get("source", "")
        else:
            source, target = _split_colons(str(vol))[:2]
            out[target] = source
    return out


def test_setup_sets_the_kibana_system_password_once_elasticsearch_is_healthy() -> None:
    services = _services()
    setup = services["setup"]
    cmd = _command(setup)
    assert "/_security/user/kibana_system/_password" in cmd
    assert "KIBANA_PASSWORD" in cmd and "ELASTIC_PASSWORD" in cmd
    # it retries until Elasticsearch takes the request
    assert re.search(r"\buntil\b.*\bdo sleep \d+; done", cmd, re.S)
    assert _depends(setup) == {"es01": "service_healthy"}
    assert setup.get("restart", "no") == "no"  # one-shot
    # the password comes from .env and a missing one stops compose with a message
    assert _env(setup)["KIBANA_PASSWORD"].startswith("${KIBANA_PASSWORD:?")
    # Kibana logs in as kibana_system, only after setup completed
    kibana = services["kibana"]
    assert _depends(kibana) == {"setup": "service_completed_successfully"}
    kenv = _env(kibana)
    assert kenv["ELASTICSEARCH_USERNAME"] == "kibana_system"
    assert kenv["ELASTICSEARCH_PASSWORD"] == "${KIBANA_PASSWORD}"
    assert kenv["ELASTICSEARCH_HOSTS"].startswith("https://es01:")


def test_elasticsearch_and_kibana_health_checks() -> None:
    services = _services()
    for name, needle in (("es01", "_cluster/health"), ("kibana", "/api/status")):
        check = services[name]["healthcheck"]
        test = check["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), name
        assert needle in " ".join(test), name
        assert int(str(check["retries"])) >= 3, name
        assert str(check["interval"]).endswith("s") and str(check["timeout"]).endswith("s"), name
    es_test = " ".join(services["es01"]["healthcheck"]["test"])
    assert "green|yellow" in es_test and "--cacert" in es_test  # healthy means yellow+, TLS verified


def test_data_lives_in_named_volumes() -> None:
    compose = _compose()
    declared = set(compose.get("volumes") or {})
    assert {"certs", "esdata", "kibanadata", "shipperstate"} <= declared
    services = _services()
    expected = {
        "es01": ("/usr/share/elasticsearch/data", "esdata"),
        "kibana": ("/usr/share/kibana/data", "kibanadata"),
        "shipper": ("/state", "shipperstate"),
    }
    for name, (target, volume) in expected.items():
        assert _mounts(services[name]).get(target) == volume, name
    # every named source a service mounts is declared (else compose refuses the file)
    for name, svc in services.items():
        for source in _mounts(svc).values():
            if source and not source.startswith((".", "/", "$", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source!r}"


def test_shipper_watches_a_mounted_folder() -> None:
    shipper = _services()["shipper"]
    cmd = _command(shipper)
    m = re.search(r"exec sysmon-ship watch (\S+)", cmd)
    assert m, cmd
    watched = m.group(1)
    mounts = _mounts(shipper)
    assert watched in mounts, f"watches {watched}, which is not mounted"
    assert mounts[watched].startswith("${SYSMON_WATCH_HOST_DIR")
    assert _depends(shipper) == {"es01": "service_healthy"}
    env = _env(shipper)
    assert env["ES_URL"].startswith("https://es01:")
    assert env["SYSMON_STATE_DIR"] == "/state"  # checkpoints in the named volume
    assert shipper.get("stop_signal") == "SIGTERM"


def test_detector_runs_the_daemon() -> None:
    detector = _services()["detector"]
    cmd = _command(detector)
    assert re.search(r"exec sysmon-detect daemon\b", cmd), cmd
    assert cmd.index("sysmon-detect setup") < cmd.index("sysmon-detect daemon")
    assert _depends(detector) == {"es01": "service_healthy"}
    env = _env(detector)
    assert env["ES_URL"].startswith("https://es01:") and env["ES_CA_CERTS"]
    assert detector.get("restart") == "unless-stopped"


def test_hunter_saves_the_hunt_stacks_on_a_schedule() -> None:
    hunter = _services()["hunter"]
    cmd = _command(hunter)
    assert re.search(r"exec sysmon-detect hunt save\b.*--every", cmd), cmd
    assert _depends(hunter) == {"es01": "service_healthy"}
    assert hunter.get("stop_signal") == "SIGTERM" and hunter.get("restart") == "unless-stopped"


def _host_ip(port: Any) -> str | None:
    """The host address a ports entry binds to; None when it binds to every interface."""
    if isinstance(port, dict):
        return str(port["host_ip"]) if port.get("host_ip") else None
    parts = _split_colons(str(port))
    if len(parts) == 3:
        return parts[0]
    if len(parts) > 3 and str(port).startswith("["):  # "[::]:9200:9200"
        return ":".join(parts[:-2])
    return None


def test_no_port_on_every_interface() -> None:
    # also catches "9200:9200", "0.0.0.0:…", "[::]:…", long syntax without host_ip, and host networking
    for name, svc in _services().items():
        assert svc.get("network_mode") != "host", name
        for port in svc.get("ports", []):
            host = _host_ip(port)
            assert host not in (None, "", "0.0.0.0", "::", "[::]"), (
                f"{name} publishes {port!r} on all interfaces"
            )
            assert host == "127.0.0.1", f"{name} publishes {port!r} on {host}"


def test_spec_helpers() -> None:
    assert _split_colons("${SYSMON_WATCH_HOST_DIR:-./sysmon-logs}:/watch:ro") == [
        "${SYSMON_WATCH_HOST_DIR:-./sysmon-logs}",
        "/watch",
        "ro",
    ]
    # the helper itself must see the spellings that open a port to the network
    assert _host_ip("9200:9200") is None
    assert _host_ip("9200") is None
    assert _host_ip("0.0.0.0:9200:9200") == "0.0.0.0"
    assert _host_ip("127.0.0.1:${ES_PORT:-9200}:9200") == "127.0.0.1"
    assert _host_ip("${ES_PORT:-9200}:9200") is None
    assert _host_ip("[::]:9200:9200") == "[::]"
    assert _host_ip({"target": 9200, "published": 9200}) is None
    assert _host_ip({"target": 9200, "published": 9200, "host_ip": "127.0.0.1"}) == "127.0.0.1"
