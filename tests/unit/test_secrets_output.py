"""A password in ES_URL never reaches output or errors, and turning TLS verification off is said
once on stderr."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from shipper import es as shipper_es
from shipper.cli import main as ship_main
from shipper.errors import ClusterError
from shipper.es import ClusterSettings, check_cluster, make_client

SECRET = "hunter2-Secret"


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_masked_settings_hide_the_url_password() -> None:
    s = ClusterSettings.from_env({"ES_URL": f"https://elastic:{SECRET}@127.0.0.1:9200"})
    assert s.masked()["url"] == "https://elastic:****@127.0.0.1:9200"


def test_connection_error_hides_the_url_password() -> None:
    url = f"http://elastic:{SECRET}@127.0.0.1:{_closed_port()}"
    client = make_client(ClusterSettings.from_env({"ES_URL": url}), max_retries=0)
    with pytest.raises(ClusterError) as info:
        check_cluster(client, url)
    assert SECRET not in str(info.value) and "elastic:****@" in str(info.value)


def test_config_check_and_ship_errors_hide_the_password(tmp_path: object) -> None:
    url = f"http://elastic:{SECRET}@127.0.0.1:{_closed_port()}"
    runner = CliRunner()
    for args in (["config", "check"], ["setup", "--index-prefix", "tsecret"]):
        res = runner.invoke(ship_main, args, env={"ES_URL": url})
        assert SECRET not in res.output, (args, res.output)


def test_unverified_tls_is_said_once(capsys: pytest.CaptureFixture[str]) -> None:
    shipper_es._WARNED.clear()
    settings = ClusterSettings.from_env(
        {"ES_URL": f"https://u:{SECRET}@127.0.0.1:9200", "ES_VERIFY_CERTS": "false"}
    )
    make_client(settings)
    make_client(settings)
    err = capsys.readouterr().err
    assert err.count("NOT verified") == 1
    assert SECRET not in err and "u:****@127.0.0.1:9200" in err


def test_debug_tracebacks_mask_the_yaml_line_that_holds_a_password(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("es:\n  url: https://127.0.0.1:9200\n  password: hunter2-SECRET: [x\n", encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        ship_main.main(["--debug", "config", "check", "--config", str(bad)], standalone_mode=False)
    assert done.value.code == 1
    err = capfd.readouterr().err
    assert "Traceback (most recent call last)" in err and "not valid YAML" in err
    assert "password: ****" in err and "hunter2" not in err
