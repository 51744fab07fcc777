"""Indicator normalisation and the ECS fragment."""

from __future__ import annotations

import dataclasses

import pytest

from detectors.intel.model import (
    Indicator,
    confidence_label,
    infer,
    iso_utc,
    normalise,
    normalise_cidr,
    normalise_domain,
    normalise_ip,
    normalise_url,
    parse_confidence,
    parse_port,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", ("ip", "192.0.2.1")),
        (" 2001:DB8:0:0::1 ", ("ip", "2001:db8::1")),
        ("::ffff:192.0.2.1", ("ip", "192.0.2.1")),
        ("192.0.2.0/24", ("cidr", "192.0.2.0/24")),
        ("192.0.2.77/24", ("cidr", "192.0.2.0/24")),
        ("192.0.2.77/32", ("ip", "192.0.2.77")),
        ("2001:db8::1/128", ("ip", "2001:db8::1")),
        ("::ffff:192.0.2.0/120", ("cidr", "192.0.2.0/24")),
        ("EVIL.Example.COM.", ("domain", "evil.example.com")),
        ("bücher.example", ("domain", "xn--bcher-kva.example")),
        ("evil[.]example[.]com", ("domain", "evil.example.com")),
        ("D41D8CD98F00B204E9800998ECF8427E", ("md5", "d41d8cd98f00b204e9800998ecf8427e")),
        ("da39a3ee5e6b4b0d3255bfef95601890afd80709", ("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709")),
        ("HXXP://Evil.Example/a", ("url", "http://evil.example/a")),
        ("C:\\Windows\\System32\\SvcHost.exe", ("image_path", "c:\\windows\\system32\\svchost.exe")),
        ("C:/Tools/x.exe", ("image_path", "c:\\tools\\x.exe")),
        ("PowerShell.EXE", ("image_name", "powershell.exe")),
    ],
)
def test_infer_normalises(text: str, expected: tuple[str, str]) -> None:
    assert infer(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "192.0.2.300", "1.2.3", "bad..example", "-bad.example", "localhost", "g" * 64, "010.1.1.1"],
)
def test_infer_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        infer(text)


def test_hash_like_value_of_wrong_length_says_so() -> None:
    with pytest.raises(ValueError, match="63 hex digits"):
        infer("a" * 63)


def test_forced_types_check_the_value() -> None:
    assert normalise("192.0.2.0/24", "ip") == ("cidr", "192.0.2.0/24")
    with pytest.raises(ValueError, match="expected a sha256"):
        normalise("d41d8cd98f00b204e9800998ecf8427e", "sha256")
    with pytest.raises(ValueError):
        normalise("not-an-ip", "ip")


def test_ip_and_cidr_helpers() -> None:
    assert normalise_ip("[2001:db8::1]") == "2001:db8::1"
    with pytest.raises(ValueError, match="scope"):
        normalise_ip("fe80::1%eth0")
    assert normalise_cidr("2001:DB8::/32") == ("cidr", "2001:db8::/32")


def test_domain_rules() -> None:
    assert normalise_domain("xn--bcher-kva.example") == "xn--bcher-kva.example"
    assert normalise_domain("_dmarc.example.com") == "_dmarc.example.com"
    with pytest.raises(ValueError, match="numeric"):
        normalise_domain("192.0.2.999")
    with pytest.raises(ValueError):
        normalise_domain("a" * 64 + ".example")


def test_url_normalisation_keeps_path_case_and_derives_host() -> None:
    value, host = normalise_url("HTTPS://user@Evil.Example:8443/Path/X.php?Q=1#frag")
    assert value == "https://user@evil.example:8443/Path/X.php?Q=1#frag"
    assert host == ("domain", "evil.example")
    assert normalise_url("http://[2001:DB8::5]/x")[1] == ("ip", "2001:db8::5")
    for bad in ("evil.example/path", "http://", "http://exa mple.com/", "http://[::1/", "http://h:99999/"):
        with pytest.raises(ValueError):
            normalise_url(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-02 10:01:05", "2024-05-02T10:01:05Z"),
        ("2024-05-02", "2024-05-02T00:00:00Z"),
        ("2024-04-20T09:30:00.000000+02:00", "2024-04-20T07:30:00Z"),
        ("2024-07-02T10:00:00.250Z", "2024-07-02T10:00:00.250Z"),
        ("1713600000", "2024-04-20T08:00:00Z"),
        ("n/a", None),
        ("", None),
        (None, None),
    ],
)
def test_iso_utc(text: str | None, expected: str | None) -> None:
    assert iso_utc(text) == expected


def test_iso_utc_rejects_garbage() -> None:
    for bad in ("yesterday", "99999999999999999999", "2024-13-01"):
        with pytest.raises(ValueError):
            iso_utc(bad)


def test_confidence_and_port_parsing() -> None:
    assert parse_confidence("75") == 75
    assert parse_confidence("None") is None
    for bad in ("high", "101", "-1", "²"):
        with pytest.raises(ValueError):
            parse_confidence(bad)
    assert parse_port("443") == 443
    for bad in ("0", "65536", "²", "x"):
        with pytest.raises(ValueError):
            parse_port(bad)


@pytest.mark.parametrize(
    ("score", "label"),
    [
        (None, "Not Specified"),
        (0, "None"),
        (1, "Low"),
        (29, "Low"),
        (30, "Medium"),
        (69, "Medium"),
        (70, "High"),
    ],
)
def test_confidence_label_follows_stix_scale(score: int | None, label: str) -> None:
    assert confidence_label(score) == label


def test_indicator_is_frozen_and_slotted() -> None:
    ind = Indicator("ip", "192.0.2.1", line=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ind.value = "x"  # type: ignore[misc]
    assert not hasattr(ind, "__dict__")
    assert ind.key == ("ip", "192.0.2.1")
    assert hash(ind) == hash(Indicator("ip", "192.0.2.1", line=1))


def test_ecs_ip_with_confidence_and_ports() -> None:
    ind = Indicator(
        "ip",
        "192.0.2.10",
        line=10,
        provider="feodo",
        first_seen="2023-10-01T01:02:03Z",
        last_seen="2024-05-02T00:00:00Z",
        confidence=85,
        malware="Pikabot",
        ports=(443, 995),
        tags=("c2",),
    )
    doc = ind.ecs()
    assert doc["threat"]["indicator"] == {
        "type": "ipv4-addr",
        "ip": "192.0.2.10",
        "confidence": "High",
        "provider": "feodo",
        "first_seen": "2023-10-01T01:02:03Z",
        "last_seen": "2024-05-02T00:00:00Z",
        "port": [443, 995],
    }
    assert doc["threat"]["feed"] == {"name": "feodo"}
    assert doc["threat"]["software"] == {"name": "Pikabot"}
    assert doc["intel"] == {
        "type": "ip",
        "value": "192.0.2.10",
        "derived": False,
        "confidence_score": 85,
        "ports": [443, 995],
        "tags": ["c2"],
        "line": 10,
    }


def test_ecs_cidr_goes_to_the_custom_namespace() -> None:
    doc = Indicator("cidr", "2001:db8::/32", line=1).ecs()
    assert doc["threat"]["indicator"]["type"] == "ipv6-addr"
    assert "ip" not in doc["threat"]["indicator"]
    assert doc["intel"]["cidr"] == "2001:db8::/32"
    assert doc["threat"]["indicator"]["confidence"] == "Not Specified"


def test_ecs_domain_url_hash_and_file_shapes() -> None:
    assert Indicator("domain", "evil.example", line=1).ecs()["threat"]["indicator"]["url"] == {
        "domain": "evil.example"
    }
    url = Indicator("url", "https://evil.example:8443/a/b?x=1", line=1).ecs()["threat"]["indicator"]
    assert url["type"] == "url"
    assert url["url"] == {
        "full": "https://evil.example:8443/a/b?x=1",
        "original": "https://evil.example:8443/a/b?x=1",
        "scheme": "https",
        "domain": "evil.example",
        "path": "/a/b",
        "query": "x=1",
        "port": 8443,
    }
    sha = Indicator("sha256", "ab" * 32, line=1).ecs()["threat"]["indicator"]
    assert sha["type"] == "file" and sha["file"] == {"hash": {"sha256": "ab" * 32}}
    path = Indicator("image_path", "c:\\windows\\x.exe", line=1).ecs()["threat"]["indicator"]
    assert path["file"] == {"path": "c:\\windows\\x.exe", "name": "x.exe"}
    name = Indicator("image_name", "x.exe", line=1).ecs()["threat"]["indicator"]
    assert name["file"] == {"name": "x.exe"}
