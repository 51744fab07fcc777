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


def test_bulk_bodies_in_bytes_go_out_as_they_are() -> None:
    """A pre-serialised NDJSON body is not copied by the client's serializer (twice, in its
    own); anything else is serialised as the client would."""
    from shipper.es import make_client

    client = make_client(ClusterSettings(url="http://127.0.0.1:9"))
    serializers = client.transport.serializers
    body = b'{"create":{"_index":"i","_id":"1"}}\n{"a":1}\n'
    for mimetype in ("application/x-ndjson", "application/vnd.elasticsearch+x-ndjson"):
        assert serializers.dumps(body, mimetype) is body
        assert serializers.dumps(body[:-1], mimetype) == body  # the final newline added
        assert serializers.dumps([{"a": 1}, {"b": 2}], mimetype) == b'{"a":1}\n{"b":2}\n'
