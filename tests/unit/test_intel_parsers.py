"""Feed parsers, the format registry and detection, against fixtures carrying the feeds' quirks
(tests/fixtures/intel/, written after the formats' documentation)."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.intel.formats import FORMATS, build_registry, detect_format, format_names, get_format
from detectors.intel.formats.base import FormatSpec
from detectors.intel.formats.stix import PatternError, parse_pattern
from detectors.intel.model import Indicator, ParseIssue, ParseItem, ParseOptions
from detectors.intel.parsing import merge_duplicates, parse, parse_path
from shipper.errors import InputError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "intel"


def split(items: Iterable[ParseItem]) -> tuple[list[Indicator], list[ParseIssue]]:
    inds: list[Indicator] = []
    issues: list[ParseIssue] = []
    for item in items:
        (inds if isinstance(item, Indicator) else issues).append(item)  # type: ignore[arg-type]
    return inds, issues


def load(name: str, fmt: str = "auto", **options: object) -> tuple[list[Indicator], list[ParseIssue]]:
    opts = ParseOptions(**options) if options else None  # type: ignore[arg-type]
    return split(parse_path(FIXTURES / name, fmt, source_name="test", options=opts))


def values(inds: Iterable[Indicator], *, derived: bool | None = None) -> list[tuple[str, str]]:
    return [i.key for i in inds if derived is None or i.derived == derived]


# --- detection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("feodo_ipblocklist.csv", "feodo_csv"),
        ("feodo_ipblocklist.txt", "feodo_text"),
        ("urlhaus_online.csv", "urlhaus_csv"),
        ("urlhaus_hostfile.txt", "urlhaus_hosts"),
        ("malwarebazaar_recent.csv", "malwarebazaar_csv"),
        ("malwarebazaar_sha256.txt", "malwarebazaar_text"),
        ("threatfox_recent.csv", "threatfox_csv"),
        ("threatfox_old.csv", "threatfox_csv"),
        ("spamhaus_drop.txt", "spamhaus_drop"),
        ("spamhaus_drop_v4.json", "spamhaus_drop_json"),
        ("spamhaus_drop_v6.json", "spamhaus_drop_json"),
        ("stix_bundle.json", "stix"),
        ("misp_feed/manifest.json", "misp"),
        ("misp_feed/5f2b3c4d-1a2b-4c3d-8e9f-0a1b2c3d4e5f.json", "misp"),
    ],
)
def test_detect_format_from_content(name: str, fmt: str) -> None:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    assert detect_format(text[:16384], None) == fmt


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        ("192.0.2.1\nevil.example\n", "plain"),
        ("", "plain"),
        ('{"more": false, "objects": [{"type": "indicator"}]}', "stix"),
        ('id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n"1","x"', "urlhaus_csv"),
        ("\ufeff# sha256_hash\r\nab\r\n", "malwarebazaar_text"),
        ("0.0.0.0 a.example\n0.0.0.0 b.example\n", "urlhaus_hosts"),
    ],
)
def test_detect_format_more_variants(head: str, fmt: str) -> None:
    assert detect_format(head, None) == fmt


def test_registry_lists_every_format_and_rejects_unknown_names() -> None:
    assert set(format_names()) >= {
        "plain",
        "feodo_csv",
        "feodo_text",
        "urlhaus_csv",
        "urlhaus_hosts",
        "malwarebazaar_csv",
        "malwarebazaar_text",
        "threatfox_csv",
        "spamhaus_drop",
        "spamhaus_drop_json",
        "stix",
        "misp",
    }
    assert format_names()[-1] == "plain"
    assert get_format("hosts").name == "urlhaus_hosts"
    with pytest.raises(InputError, match="unknown feed format 'nope'"):
        list(parse([], "nope", source_name="t"))
    with pytest.raises(ValueError, match="twice"):
        build_registry([*FORMATS.values(), FormatSpec("plain", lambda lines, ctx: iter(()))])


# --- plain lists -------------------------------------------------------------------------------


def test_plain_list_with_comments_crlf_bom_and_hosts_lines() -> None:
    text = (
        "\ufeff# my list\r\n"
        "; also a comment\r\n"
        "192.0.2.1\r\n"
        "198.51.100.0/24   # a trailing comment\r\n"
        "Evil.Example.COM. ; trailing semicolon comment\r\n"
        "http://evil.example/path#frag\r\n"
        "0.0.0.0 hosts-entry.example other.example\r\n"
        "127.0.0.1 localhost\r\n"
        "\r\n"
        "192.0.2.300\r\n"
        "two values.example here.example\r\n"
        "e85130791f31db1699f61a5e7ae7b5e85e70399414f38476091896214771cd17\r\n"
    )
    inds, issues = split(parse(io.StringIO(text, newline=""), "plain", source_name="mine"))
    assert values(inds) == [
        ("ip", "192.0.2.1"),
        ("cidr", "198.51.100.0/24"),
        ("domain", "evil.example.com"),
        ("url", "http://evil.example/path#frag"),
        ("domain", "evil.example"),
        ("domain", "hosts-entry.example"),
        ("domain", "other.example"),
        ("sha256", "e85130791f31db1699f61a5e7ae7b5e85e70399414f38476091896214771cd17"),
    ]
    assert [i.line for i in inds] == [3, 4, 5, 6, 6, 7, 7, 12]
    assert inds[4].derived and not inds[3].derived
    assert all(i.provider == "mine" for i in inds)
    assert [(i.line, i.kind) for i in issues] == [(8, "skipped"), (10, "invalid"), (11, "invalid")]
    assert issues[1].raw == "192.0.2.300" and issues[1].source == "mine"
    assert "line 10" not in str(issues[1]) and str(issues[1]).startswith("mine:10:")


def test_plain_forced_type_and_default_confidence() -> None:
    text = "192.0.2.1\nevil.example\n"
    inds, issues = split(
        parse(
            text.splitlines(True),
            "plain",
            source_name="t",
            options=ParseOptions(force_type="ip", confidence=60),
        )
    )
    assert values(inds) == [("ip", "192.0.2.1")]
    assert inds[0].confidence == 60
    assert len(issues) == 1 and issues[0].line == 2


def test_plain_allowlist_paths_and_names() -> None:
    text = (
        "C:\\Program Files\\Vendor\\Agent.exe   # the agent\n"
        '"C:\\Windows\\System32\\svchost.exe"\n'
        "%SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe\n"
        "MsMpEng.exe\n"
    )
    inds, issues = split(parse(io.StringIO(text), "plain", source_name="allow"))
    assert not issues
    assert values(inds) == [
        ("image_path", "c:\\program files\\vendor\\agent.exe"),
        ("image_path", "c:\\windows\\system32\\svchost.exe"),
        ("image_path", "%systemroot%\\system32\\windowspowershell\\v1.0\\powershell.exe"),
        ("image_name", "msmpeng.exe"),
    ]


def test_plain_derived_hosts_once_per_feed_and_can_be_turned_off() -> None:
    text = "http://a.example/1\nhttp://a.example/2\nhttp://192.0.2.9/x\n"
    inds, _ = split(parse(io.StringIO(text), "plain", source_name="t"))
    assert values(inds, derived=True) == [("domain", "a.example"), ("ip", "192.0.2.9")]
    inds, _ = split(
        parse(io.StringIO(text), "plain", source_name="t", options=ParseOptions(derive_hosts=False))
    )
    assert values(inds, derived=True) == []


def test_auto_detection_in_parse_keeps_every_line() -> None:
    text = (FIXTURES / "spamhaus_drop.txt").read_text()
    inds, issues = split(parse(io.StringIO(text), "auto", source_name="drop"))
    assert len(inds) == 4 and len(issues) == 1


# --- Feodo Tracker ------------------------------------------------------------------------------


def test_feodo_csv_merges_duplicate_ips_and_reports_bad_rows() -> None:
    assert b"\r\n" in (FIXTURES / "feodo_ipblocklist.csv").read_bytes()
    inds, issues = load("feodo_ipblocklist.csv")
    assert values(inds) == [("ip", "192.0.2.10"), ("ip", "198.51.100.7"), ("ip", "2001:db8::1")]
    first = inds[0]
    assert first.ports == (443, 995, 2222)
    assert first.first_seen == "2023-10-01T01:02:03Z"
    assert first.last_seen == "2024-05-02T00:00:00Z"
    assert first.malware == "Pikabot"
    assert first.line == 10
    assert inds[2].last_seen is None
    assert [(i.line, i.message) for i in issues] == [
        (14, "not an IP address: '203.0.113.300'"),
        (16, "expected 6 fields, found 4"),
    ]


def test_feodo_text_is_a_plain_list() -> None:
    inds, issues = load("feodo_ipblocklist.txt")
    assert values(inds) == [("ip", "192.0.2.10"), ("ip", "198.51.100.7"), ("ip", "203.0.113.45")]
    assert [i.line for i in inds] == [7, 8, 9]
    assert not issues


# --- URLhaus -----------------------------------------------------------------------------------


def test_urlhaus_csv_commented_header_quoted_tags_and_derived_hosts() -> None:
    inds, issues = load("urlhaus_online.csv")
    assert values(inds, derived=False) == [
        ("url", "http://198.51.100.23:45678/Mozi.m"),
        ("url", "https://evil-downloads.example.com/payload/invoice.exe"),
        ("url", "https://evil-downloads.example.com/payload/second.zip"),
        ("url", "http://[2001:db8::5]/x.sh"),
    ]
    assert values(inds, derived=True) == [
        ("ip", "198.51.100.23"),
        ("domain", "evil-downloads.example.com"),
        ("ip", "2001:db8::5"),
    ]
    mozi = inds[0]
    assert mozi.tags == ("elf", "Mozi")
    assert mozi.reference == "https://urlhaus.abuse.ch/url/2840001/"
    assert mozi.first_seen == "2024-05-02T10:01:05Z"
    assert mozi.extra_dict() == {"urlhaus_id": "2840001", "url_status": "online", "reporter": "lrz_urlhaus"}
    assert inds[2].tags == ("exe", "AgentTesla", "opendir")
    assert [(i.line, i.kind) for i in issues] == [(13, "invalid")]


def test_urlhaus_csv_with_uncommented_header_and_other_column_order() -> None:
    text = (
        "id,dateadded,url,url_status,threat,tags,urlhaus_link,reporter\r\n"
        '"7","2024-01-01 00:00:00","http://evil.example/a","offline","malware_download",'
        '"a,b","https://urlhaus.abuse.ch/url/7/","x"\r\n'
    )
    inds, issues = split(parse(io.StringIO(text, newline=""), "auto", source_name="u"))
    assert not issues
    assert values(inds) == [("url", "http://evil.example/a"), ("domain", "evil.example")]
    assert inds[0].tags == ("a", "b") and inds[0].last_seen is None and inds[0].line == 2


def test_urlhaus_hosts_skips_localhost() -> None:
    inds, issues = load("urlhaus_hostfile.txt")
    assert values(inds) == [
        ("domain", "malware-host.example.net"),
        ("domain", "another.bad.example.org"),
        ("domain", "xn--bcher-kva.example"),
    ]
    assert [(i.line, i.kind) for i in issues] == [(7, "skipped"), (8, "skipped"), (12, "invalid")]


# --- MalwareBazaar ------------------------------------------------------------------------------


def test_malwarebazaar_csv_comma_space_na_and_upper_case_hashes() -> None:
    inds, issues = load("malwarebazaar_recent.csv")
    assert values(inds)[:3] == [
        ("sha256", "e85130791f31db1699f61a5e7ae7b5e85e70399414f38476091896214771cd17"),
        ("md5", "ac46374a846d97e22f917b6863f690ad"),
        ("sha1", "c37bca4afb8ff7f52f450b04c1973f37dfde48db"),
    ]
    first = inds[0]
    assert first.malware == "AgentTesla"
    assert first.extra_dict()["file_name"] == "Invoice, May 2024.exe"
    assert "clamav" not in first.extra_dict()
    assert first.reference == "https://bazaar.abuse.ch/sample/" + first.value + "/"
    second_row = [i for i in inds if i.line == 11]
    assert [i.type for i in second_row] == ["sha256", "md5"]  # sha1 "n/a"
    assert second_row[0].malware is None  # signature "n/a"
    third_row = [i for i in inds if i.line == 12]
    assert [i.type for i in third_row] == ["md5", "sha1"]
    assert [(i.line, i.message) for i in issues] == [
        (12, "not an MD5, SHA1 or SHA256 hash: 'zzzz'"),
        (13, "expected 14 fields, found 3"),
    ]


def test_malwarebazaar_text() -> None:
    inds, issues = load("malwarebazaar_sha256.txt")
    assert [i.type for i in inds] == ["sha256", "sha256"]
    assert inds[1].value == "5a9392784e07eb40cfb3f4a464e0a91451f573eeb59d600983e190bd8aaddca6"
    assert [(i.line, i.message) for i in issues] == [
        (
            9,
            "not an MD5, SHA1 or SHA256 hash (63 hex digits): "
            "'369d8e27270351b658b102785616797dab62b659058ca2494872b6bd0181aca'",
        )
    ]


# --- ThreatFox ----------------------------------------------------------------------------------


def test_threatfox_csv_types_ports_confidence() -> None:
    inds, issues = load("threatfox_recent.csv")
    # a URL's host is derived even when another line lists it (the loader merges by key)
    assert values(inds, derived=True) == [("domain", "bad-c2.example.net")]
    inds = [i for i in inds if not i.derived]
    assert values(inds) == [
        ("ip", "192.0.2.77"),
        ("domain", "bad-c2.example.net"),
        ("url", "http://bad-c2.example.net/gate.php"),
        ("sha256", "4c18b7a6e5a96b0cf07ac0486d8f23454b0c0adb881db3ae0986e5e06b472f31"),
        ("md5", "eae78e001f68ca604b6a86f41152dfb6"),
        ("ip", "2001:db8::77"),
    ]
    cs = inds[0]
    assert cs.ports == (443,) and cs.confidence == 100 and cs.malware == "Cobalt Strike"
    assert cs.tags == ("c2", "CobaltStrike")
    assert cs.reference == "https://threatfox.abuse.ch/ioc/1270001/"  # "None" in the feed
    assert cs.extra_dict()["is_compromised"] == "0"
    assert inds[1].reference == "https://example.org/report/remcos"
    assert inds[1].last_seen == "2024-05-02T11:00:00Z"
    assert inds[2].tags == ()
    assert inds[5].ports == (8443,) and inds[5].confidence is None
    assert [(i.line, i.kind) for i in issues] == [(15, "invalid"), (16, "unsupported"), (17, "invalid")]


def test_threatfox_csv_without_is_compromised_and_unquoted_header() -> None:
    inds, issues = load("threatfox_old.csv")
    assert not issues
    assert values(inds) == [("ip", "203.0.113.9"), ("domain", "tf2.example.com")]
    assert inds[0].ports == (4444,) and inds[0].confidence == 75 and inds[0].malware == "NjRAT"
    assert "is_compromised" not in inds[0].extra_dict()
    assert inds[1].reference == "https://example.org/njrat"


def test_threatfox_zipped_dump_from_path_and_bytes(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("full.csv", (FIXTURES / "threatfox_recent.csv").read_bytes())
    zipped = tmp_path / "full_csv.zip"
    zipped.write_bytes(buf.getvalue())
    from_path = split(parse_path(zipped, source_name="tf"))
    from_bytes = split(parse_path(buf.getvalue(), source_name="tf"))
    assert len(from_path[0]) == 7 and from_path == from_bytes


def test_zip_with_several_files_is_an_input_error(tmp_path: Path) -> None:
    zipped = tmp_path / "two.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("a.csv", "x")
        zf.writestr("b.csv", "y")
    with pytest.raises(InputError, match="2 files"):
        list(parse_path(zipped))


def test_gzip_feed(tmp_path: Path) -> None:
    path = tmp_path / "drop.txt.gz"
    path.write_bytes(gzip.compress((FIXTURES / "spamhaus_drop.txt").read_bytes()))
    inds, _ = split(parse_path(path, source_name="d"))
    assert len(inds) == 4


# --- Spamhaus -----------------------------------------------------------------------------------


def test_spamhaus_drop_text() -> None:
    inds, issues = load("spamhaus_drop.txt")
    assert values(inds) == [
        ("cidr", "192.0.2.0/24"),
        ("cidr", "198.51.100.0/22"),
        ("cidr", "203.0.113.0/24"),
        ("ip", "198.51.100.77"),
    ]
    assert inds[0].extra_dict() == {"sblid": "SBL256894"}
    assert [i.line for i in issues] == [8]


def test_spamhaus_drop_json_v4_and_v6_ignores_metadata() -> None:
    inds, issues = load("spamhaus_drop_v4.json")
    assert values(inds) == [("cidr", "192.0.2.0/24"), ("cidr", "198.51.100.0/22"), ("cidr", "203.0.113.0/24")]
    assert inds[0].extra_dict() == {"rir": "apnic", "sblid": "SBL256894"}
    assert [i.line for i in issues] == [4, 5]
    inds6, issues6 = load("spamhaus_drop_v6.json")
    assert values(inds6) == [("cidr", "2001:db8:1000::/36"), ("cidr", "2001:db8:2000::/40")]
    assert not issues6


# --- STIX ---------------------------------------------------------------------------------------


def test_stix_bundle() -> None:
    inds, issues = load("stix_bundle.json")
    assert values(inds) == [
        ("ip", "192.0.2.99"),
        ("domain", "c2.example.net"),
        ("url", "https://c2.example.net/beacon?id=1"),
        ("sha256", "983e17745effc49e6e29a1cd0109042df084fcfdf6726e72c38b350c10497164"),
        ("md5", "a37f8a1c9ede5686a0afe84602ebb34e"),
        ("sha1", "b49216fde493fcb249f49d591409bdf69b787315"),
        ("sha256", "d765807cab8eeb95186df2919d7b5b5e40b1f090efcd7ee18e9673fb39ea8710"),
        ("cidr", "198.51.100.0/24"),
        ("ip", "2001:db8::abcd"),
    ]
    cs = inds[0]
    assert cs.first_seen == "2024-04-02T10:00:00Z" and cs.last_seen == "2024-07-02T10:00:00Z"
    assert cs.confidence == 85 and cs.malware == "Cobalt Strike"
    assert cs.description == "Cobalt Strike team server" and cs.tags == ("malicious-activity",)
    assert cs.reference == "https://cert.example.org/a/1"
    assert cs.line == 26  # the line of the indicator's "id"
    assert cs.extra_dict() == {"stix_id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}
    kinds = [(i.kind, i.message.split(": ", 1)[1]) for i in issues]
    assert kinds == [
        ("unsupported", "expected ']', found 'AND'"),
        ("unsupported", "operator '!=' not supported (only '=')"),
        ("unsupported", "pattern_type 'yara' not supported"),
        ("skipped", "revoked"),
        ("unsupported", "object path 'email-addr:value' not supported"),
        ("unsupported", "'FOLLOWEDBY' not supported (only OR joins observations)"),
        ("invalid", 'not a domain name: "o\'brien.example"'),
    ]


def test_taxii_envelope_and_invalid_json() -> None:
    envelope = {
        "more": True,
        "next": "2",
        "objects": [
            {
                "type": "indicator",
                "id": "indicator--1",
                "pattern": "[url:value = 'http://x.example/a'] OR [ipv4-addr:value = '192.0.2.1']",
                "pattern_type": "stix",
                "valid_from": "2024-01-01T00:00:00Z",
            }
        ],
    }
    inds, issues = split(parse(io.StringIO(json.dumps(envelope)), "auto", source_name="taxii"))
    assert values(inds) == [("url", "http://x.example/a"), ("domain", "x.example"), ("ip", "192.0.2.1")]
    assert not issues
    _, issues = split(parse(io.StringIO('{"type": "bundle",\n "objects": [,]}'), "stix", source_name="s"))
    assert len(issues) == 1 and issues[0].line == 2


@pytest.mark.parametrize(
    ("pattern", "paths"),
    [
        ("[ipv4-addr:value = '1.2.3.4']", ["ipv4-addr:value"]),
        (
            "[file:hashes.'SHA-256' = 'x'] OR [file:hashes.SHA256 = 'y']",
            ["file:hashes.'SHA-256'", "file:hashes.SHA256"],
        ),
        ("[a:value = 'x' OR b:value = 'y']", ["a:value", "b:value"]),
        ("([a:value = 'x']) OR ([b:value = 'y'])", ["a:value", "b:value"]),
    ],
)
def test_pattern_parser_accepts_or(pattern: str, paths: list[str]) -> None:
    assert [c.path for c in parse_pattern(pattern)] == paths


@pytest.mark.parametrize(
    "pattern",
    [
        "[a:value = 'x'] AND [b:value = 'y']",
        "[a:value MATCHES 'x']",
        "[a:value = 'x'] WITHIN 5 SECONDS",
        "[a:value = 'x'",
        "[a:value = t'2020-01-01T00:00:00Z']",
        "a:value = 'x'",
        "[a:value = 'x'] REPEATS 2 TIMES",
        "[a:value IN ('x', 'y')]",
    ],
)
def test_pattern_parser_rejects_the_rest(pattern: str) -> None:
    with pytest.raises(PatternError):
        parse_pattern(pattern)


# --- MISP ---------------------------------------------------------------------------------------


def test_misp_feed_folder() -> None:
    inds, issues = load("misp_feed")
    assert values(inds) == [
        ("ip", "192.0.2.50"),
        ("ip", "192.0.2.51"),
        ("domain", "emotet-c2.example.net"),
        ("ip", "192.0.2.52"),
        ("url", "http://dl.example.org/invoice.doc"),
        ("domain", "dl.example.org"),
        ("cidr", "198.51.100.0/24"),
        ("sha256", "a8e6b38be58d0978a5d0260967a65f77184905745287a6a6231c4cdc2f983fed"),
        ("sha1", "7747339a886670748170bbc41fbd9cd4bc552052"),
        ("md5", "0e90829bd8d7cc6790eb4895bfd04d1b"),
    ]
    c2 = inds[0]
    assert c2.description == "C2 server" and c2.malware == "Emotet"
    assert c2.first_seen == "2024-04-20T00:00:00Z" and "tlp:white" in c2.tags
    assert c2.line == 15
    assert inds[1].ports == (8080,)
    assert inds[2].first_seen == "2024-04-19T08:00:00Z" and inds[2].last_seen == "2024-04-20T07:30:00Z"
    assert inds[7].extra_dict()["file_name"] == "invoice.doc"
    event_file = "5f2b3c4d-1a2b-4c3d-8e9f-0a1b2c3d4e5f.json"
    summary = [(Path(i.source or "").name, i.line, i.kind) for i in issues]
    assert summary == [
        (event_file, 19, "skipped"),
        (event_file, 20, "unsupported"),
        (event_file, 22, "invalid"),
        ("manifest.json", 11, "invalid"),
    ]


def test_misp_single_event_stream_and_manifest_misuse() -> None:
    text = (FIXTURES / "misp_feed" / "5f2b3c4d-1a2b-4c3d-8e9f-0a1b2c3d4e5f.json").read_text()
    inds, _ = split(parse(io.StringIO(text), "auto", source_name="misp"))
    assert len(inds) == 10
    manifest = (FIXTURES / "misp_feed" / "manifest.json").read_text()
    inds, issues = split(parse(io.StringIO(manifest), "misp", source_name="misp"))
    assert not inds and "manifest" in issues[0].message


def test_misp_composite_with_wrong_part_count() -> None:
    event = {"Event": {"Attribute": [{"type": "domain|ip", "value": "only.example", "to_ids": True}]}}
    _, issues = split(parse(io.StringIO(json.dumps(event)), "misp", source_name="m"))
    assert "2 parts" in issues[0].message


# --- merging ------------------------------------------------------------------------------------


def test_merge_duplicates_prefers_listed_over_derived() -> None:
    items: list[ParseItem] = [
        Indicator("domain", "a.example", line=1, derived=True, tags=("x",)),
        ParseIssue(2, "bad"),
        Indicator(
            "domain", "a.example", line=3, confidence=40, tags=("y",), first_seen="2024-01-02T00:00:00Z"
        ),
        Indicator("domain", "a.example", line=4, confidence=70, first_seen="2024-01-01T00:00:00Z"),
    ]
    out = list(merge_duplicates(items))
    assert isinstance(out[0], ParseIssue)
    merged = out[1]
    assert isinstance(merged, Indicator)
    assert not merged.derived and merged.line == 1 and merged.confidence == 70
    assert merged.tags == ("x", "y") and merged.first_seen == "2024-01-01T00:00:00Z"


# --- robustness ---------------------------------------------------------------------------------

LINE_FORMATS = [
    "plain",
    "feodo_csv",
    "urlhaus_csv",
    "malwarebazaar_csv",
    "threatfox_csv",
    "spamhaus_drop",
    "spamhaus_drop_json",
    "urlhaus_hosts",
]
quirky_line = st.one_of(
    st.text(max_size=120),
    st.lists(
        st.one_of(
            st.sampled_from(["ip:port", "url", "domain", "n/a", "None", "", "0.0.0.0", "#", ";", '"', "\r"]),
            st.text(alphabet="0123456789abcdefABCDEF.:/[]%-_ ,\"'#;\\", max_size=40),
        ),
        max_size=16,
    ).map(", ".join),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(LINE_FORMATS), lines=st.lists(quirky_line, max_size=8))
def test_no_input_line_crashes_a_parser(fmt: str, lines: list[str]) -> None:
    header = {
        "threatfox_csv": '# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware",'
        '"malware_alias","malware_printable","last_seen_utc","confidence_level","reference","tags",'
        '"anonymous","reporter"\n',
    }.get(fmt, "")
    text = header + "\n".join(lines)
    items = list(parse(io.StringIO(text, newline=""), fmt, source_name="fuzz"))
    for item in items:
        assert isinstance(item, Indicator | ParseIssue)
        if isinstance(item, ParseIssue):
            assert item.line >= 1


@settings(max_examples=100, deadline=None)
@given(row=st.lists(st.text(max_size=30), min_size=14, max_size=15))
def test_threatfox_rows_of_the_right_width_never_crash(row: list[str]) -> None:
    line = ", ".join(json.dumps(cell) for cell in row)
    items = list(parse([line], "threatfox_csv", source_name="fuzz"))
    assert all(isinstance(i, Indicator | ParseIssue) for i in items)


# --- streaming ----------------------------------------------------------------------------------

ENDLESS_ROWS = {
    "plain": lambda i: f"192.0.{i >> 8 & 255}.{i & 255}\r\n",
    "spamhaus_drop": lambda i: f"10.{i >> 8 & 255}.{i & 255}.0/24 ; SBL{i}\n",
    "spamhaus_drop_json": lambda i: json.dumps({"cidr": f"10.{i >> 8 & 255}.{i & 255}.0/24"}) + "\n",
    "urlhaus_csv": lambda i: (
        f'"{i}","2024-01-01 00:00:00","http://h{i}.example/x","online","","m","a,b","l","r"\n'
    ),
    "malwarebazaar_csv": lambda i: (
        f'"2024-01-01 00:00:00", "{i:064x}", "{i:032x}", "n/a", "r", "f", "exe", "m", "n/a", "n/a",'
        ' "n/a", "n/a", "n/a", "n/a"\n'
    ),
    "threatfox_csv": lambda i: (
        f'"2024-01-01 00:00:00", "{i}", "h{i}.example", "domain", "botnet_cc", "x", "None", "X", "",'
        ' "50", "0", "None", "None", "0", "r"\n'
    ),
}


@pytest.mark.parametrize("fmt", sorted(ENDLESS_ROWS))
def test_line_formats_stream(fmt: str) -> None:
    """An endless feed yields its first indicators: nothing waits for the end of the input."""

    def endless() -> Iterator[str]:
        i = 0
        while True:
            yield ENDLESS_ROWS[fmt](i)
            i += 1

    first = list(itertools.islice(parse(endless(), fmt, source_name="endless"), 10))
    assert len(first) == 10 and all(isinstance(i, Indicator) for i in first)


def test_derived_host_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import detectors.intel.formats.base as base

    monkeypatch.setattr(base, "DERIVED_MEMORY", 2)
    urls = [f"http://h{i % 3}.example/{i}\n" for i in range(6)]
    inds, _ = split(parse(urls, "plain", source_name="t"))
    derived = values(inds, derived=True)
    assert len(derived) > 3  # forgotten hosts come again; the index is keyed by value anyway
    assert set(derived) == {("domain", "h0.example"), ("domain", "h1.example"), ("domain", "h2.example")}
