"""URL userinfo, credential parameters and secret assignments are masked; the rest is kept."""

from __future__ import annotations

import pytest

from shipper.redact import mask_text, mask_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://elastic:PW@es.example:9200", "https://elastic:****@es.example:9200"),
        ("https://token@es.example", "https://****@es.example"),
        ("https://es.example:9200/", "https://es.example:9200/"),
        (
            "https://feed.example/list.txt?apikey=SECRET&type=ip",
            "https://feed.example/list.txt?apikey=****&type=ip",
        ),
        ("https://f.example/x?API_KEY=a&auth-key=b", "https://f.example/x?API_KEY=****&auth-key=****"),
        ("https://f.example/x?token=a&page=2", "https://f.example/x?token=****&page=2"),
        ("https://f.example/x?page=2&q=a%20b", "https://f.example/x?page=2&q=a%20b"),
        ("/var/feeds/list.txt", "/var/feeds/list.txt"),
        ("http://[::1", "http://[::1"),
    ],
)
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_mask_text_masks_every_url_and_assignment() -> None:
    text = (
        "TLS error talking to https://elastic:hunter2@10.0.0.5:9200: certificate verify failed; "
        "feed https://f.example/a?key=K1 failed\n  password: hunter2\nES_API_KEY=abc123 other=1"
    )
    out = mask_text(text)
    for secret in ("hunter2", "K1", "abc123"):
        assert secret not in out
    assert "https://elastic:****@10.0.0.5:9200" in out
    assert "other=1" in out
    assert "certificate verify failed" in out


def test_mask_text_is_idempotent() -> None:
    once = mask_text("password: x https://u:p@h/")
    assert mask_text(once) == once
