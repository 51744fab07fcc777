from __future__ import annotations

from pathlib import Path

from shipper.es import ClusterSettings


def test_env_overrides_and_masking(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret-from-file\n")
    s = ClusterSettings.from_env(
        {
            "ES_URL": "https://es.example:9200/",
            "ES_USERNAME": "shipper",
            "ES_PASSWORD_FILE": str(secret),
            "ES_CA_CERTS": "/etc/ca.crt",
        }
    )
    assert s.url == "https://es.example:9200" and s.password == "s3cret-from-file" and s.verify_certs
    shown = repr(s.masked())
    assert "s3cret" not in shown and "****" in shown
    assert ClusterSettings.from_env({"ES_VERIFY_CERTS": "false"}).verify_certs is False
    assert ClusterSettings.from_env({"ES_API_KEY": "abc"}).masked()["api_key"] == "****"
