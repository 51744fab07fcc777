"""Security on (TLS with the dev node's CA, file-realm users): least privilege, verification,
clear and fast failures, and no secret in any output or log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from devtools.es import NodeInfo
from shipper.es import ClusterSettings, make_client

SHIP = [sys.executable, "-c", "from shipper.cli import main; main()"]
WRITER_PASSWORD = "writer-pass-5678"


def _run(
    args: list[str], env_extra: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ES_")}
    env.update(env_extra)
    return subprocess.run(
        [*SHIP, *args], env=env, capture_output=True, text=True, check=False, timeout=timeout
    )


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("secday")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "samples",
            "generate",
            "--out",
            str(out),
            "--events",
            "2000",
            "--seed",
            "5",
            "--forms",
            "winlogbeat",
        ],
        check=True,
        capture_output=True,
    )
    return out / "winlogbeat.ndjson"


def test_least_privilege_writer_ships_over_verified_tls_and_failures_are_clear(
    es_secure: NodeInfo, sample: Path, tmp_path: Path
) -> None:
    assert es_secure.ca_cert and es_secure.password
    prefix = f"sec-{uuid.uuid4().hex[:8]}"
    admin = {
        "ES_URL": es_secure.url,
        "ES_USERNAME": "elastic",
        "ES_PASSWORD": es_secure.password,
        "ES_CA_CERTS": es_secure.ca_cert,
    }
    writer = {
        "ES_URL": es_secure.url,
        "ES_USERNAME": "writer",
        "ES_PASSWORD": WRITER_PASSWORD,
        "ES_CA_CERTS": es_secure.ca_cert,
    }
    outputs: list[str] = []

    setup = _run(["setup", "--index-prefix", prefix], admin)
    outputs += [setup.stdout, setup.stderr]
    assert setup.returncode == 0, setup.stderr

    state = tmp_path / "state"
    shipped = _run(
        ["ship", str(sample), "--index-prefix", prefix, "--state-dir", str(state), "--json"], writer
    )
    outputs += [shipped.stdout, shipped.stderr]
    assert shipped.returncode == 0, shipped.stderr
    assert json.loads(shipped.stdout)["shipped"] == 2000

    admin_client = make_client(
        ClusterSettings(
            url=es_secure.url, username="elastic", password=es_secure.password, ca_certs=es_secure.ca_cert
        )
    )
    admin_client.indices.refresh(index=f"{prefix}-events")
    assert admin_client.count(index=f"{prefix}-events")["count"] == 2000

    # the writer cannot manage templates: setup with its credentials fails with a clear message
    denied = _run(["setup", "--index-prefix", prefix, "--replicas", "1"], writer)
    outputs += [denied.stdout, denied.stderr]
    assert denied.returncode == 1
    assert "installing component template" in denied.stderr and "403" in denied.stderr

    # no CA given: the node's certificate is not trusted -> fails at once, verification stays on
    untrusted = _run(
        ["ship", str(sample), "--index-prefix", prefix, "--state-dir", str(tmp_path / "s2")],
        {k: v for k, v in writer.items() if k != "ES_CA_CERTS"},
        timeout=60,
    )
    outputs += [untrusted.stdout, untrusted.stderr]
    assert untrusted.returncode == 1
    assert "TLS verification" in untrusted.stderr and "ES_CA_CERTS" in untrusted.stderr
    assert "Traceback" not in untrusted.stderr

    # a wrong password -> 401, said plainly, before anything is read
    wrong = _run(
        ["ship", str(sample), "--index-prefix", prefix, "--state-dir", str(tmp_path / "s3")],
        {**writer, "ES_PASSWORD": "not-the-password-4321"},
        timeout=60,
    )
    outputs += [wrong.stdout, wrong.stderr]
    assert wrong.returncode == 1
    assert "refused the credentials" in wrong.stderr
    assert not (tmp_path / "s3" / "checkpoints").exists() or not any(
        (tmp_path / "s3" / "checkpoints").iterdir()
    )

    # config check prints the effective config with secrets masked and tests the connection
    check = _run(["config", "check"], writer)
    outputs += [check.stdout, check.stderr]
    assert check.returncode == 0, check.stderr
    assert "****" in check.stdout and "connection: OK" in check.stdout

    # no secret in any output, nor in the state directory (checkpoints, dead letters)
    logs = "\n".join(outputs)
    logs += "\n".join(p.read_text(errors="replace") for p in state.rglob("*") if p.is_file())
    for secret in (WRITER_PASSWORD, es_secure.password, "not-the-password-4321"):
        assert secret not in logs


def test_a_user_without_write_rights_stops_the_run_and_a_privileged_rerun_ships_it_all(
    es_secure: NodeInfo, sample: Path, tmp_path: Path
) -> None:
    """403 is the credentials, not the documents: no dead letter, no checkpoint, and a rerun with
    the right user ships all 2,000 (without --from-start). Both forms: the whole bulk request
    refused (``reader`` may not write at all) and every item refused (``writer`` may write, but
    only into ``sec-*-events-*``)."""
    assert es_secure.ca_cert and es_secure.password
    prefix = f"other-{uuid.uuid4().hex[:8]}"  # outside the writer's sec-*-events-*
    base = {"ES_URL": es_secure.url, "ES_CA_CERTS": es_secure.ca_cert}
    admin = {**base, "ES_USERNAME": "elastic", "ES_PASSWORD": es_secure.password}
    assert _run(["setup", "--index-prefix", prefix], admin).returncode == 0
    state, dead = tmp_path / "state", tmp_path / "dead.ndjson"
    args = ["ship", str(sample), "--index-prefix", prefix, "--state-dir", str(state), "--json",
            "--dead-letter", str(dead)]  # fmt: skip
    refused = {
        "reader": ("reader-pass-1234", "the cluster refused the bulk request (HTTP 403)"),
        "writer": (WRITER_PASSWORD, "refuses writes (HTTP 403 security_exception"),
    }
    for user, (password, said) in refused.items():
        denied = _run(args, {**base, "ES_USERNAME": user, "ES_PASSWORD": password})
        assert denied.returncode == 1, denied.stderr
        assert said in denied.stderr, denied.stderr
        assert "Traceback" not in denied.stderr
        assert not dead.exists()
        checkpoints = list((state / "checkpoints").glob("*.json")) if (state / "checkpoints").exists() else []
        assert all(json.loads(f.read_text())["acked"] == 0 for f in checkpoints)
    rerun = _run(args, admin)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["shipped"] == 2000
