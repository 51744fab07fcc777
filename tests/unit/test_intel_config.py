"""Feed configuration: YAML → frozen dataclasses, errors with file and line, secrets masked."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from detectors.intel.config import (
    FeedConfig,
    FeedConfigErrors,
    Secret,
    expand_env,
    format_duration,
    load_feeds,
    loads_feeds,
)
from shipper.durations import parse_duration
from shipper.errors import ConfigError

SECRET = "s3cr3t-abuse-ch-key-0123456789"

GOOD = """\
feeds:
  - name: feodo
    location: https://feodotracker.abuse.ch/downloads/ipblocklist.csv
    format: feodo_csv
    types: [ip]
    confidence: 80
    refresh: 1h
    headers:
      Auth-Key: ${ABUSECH_AUTH_KEY}
    timeout: 20
    retries: 2
  - name: local-allow
    location: allow/images.txt
    kind: allow
    refresh: 1h30m
  - name: threatfox
    location: https://threatfox-api.abuse.ch/export/csv/recent/?key=${TF_KEY}
    enabled: false
"""


def test_load_good_config(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yml"
    path.write_text(GOOD)
    feeds = load_feeds(path, env={"ABUSECH_AUTH_KEY": SECRET})
    assert [f.name for f in feeds] == ["feodo", "local-allow", "threatfox"]
    feodo, allow, tf = feeds
    assert feodo.format == "feodo_csv" and feodo.types == ("ip",) and feodo.confidence == 80
    assert feodo.refresh == timedelta(hours=1) and feodo.timeout == 20.0 and feodo.retries == 2
    assert feodo.request_headers() == {"Auth-Key": SECRET}
    assert feodo.is_remote and feodo.kind == "intel" and feodo.enabled
    assert feodo.defined_at == f"{path}:2"
    assert feodo.parse_options().confidence == 80
    assert feodo.keeps("ip") and not feodo.keeps("domain")
    assert allow.kind == "allow" and allow.url == str(tmp_path / "allow" / "images.txt")
    assert not allow.is_remote and allow.keeps("image_path")
    assert allow.refresh == timedelta(hours=1, minutes=30)
    # a disabled feed does not need its environment variables
    assert not tf.enabled
    with pytest.raises(dataclasses.FrozenInstanceError):
        feodo.name = "x"  # type: ignore[misc]


def test_secrets_never_show(caplog: pytest.LogCaptureFixture) -> None:
    env = {"ABUSECH_AUTH_KEY": SECRET, "TF_KEY": SECRET}
    feeds = loads_feeds(GOOD.replace("enabled: false", "enabled: true"), env=env)
    feodo, _, tf = feeds
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("feeds: %s %r", feeds, feeds)
    shown = [repr(feeds), str(feodo), repr(feodo), str(feodo.masked()), f"{feodo.headers[0][1]}", caplog.text]
    shown += [repr(tf), str(tf.masked()), tf.display_location]
    for text in shown:
        assert SECRET not in text
    assert feodo.masked()["headers"] == {"Auth-Key": "***"}
    assert tf.url.endswith(SECRET)
    assert tf.display_location.endswith("?key=${TF_KEY}")
    assert repr(Secret(SECRET)) == "Secret('***')"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(Secret(SECRET))


def test_top_level_list_and_empty_file() -> None:
    assert loads_feeds("") == []
    feeds = loads_feeds("- name: a\n  location: /tmp/a.txt\n")
    assert feeds[0].name == "a" and feeds[0].format == "auto" and feeds[0].types == ()


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("feeds:\n  - name: a\n    location: x\n    refresh: soon\n", 4, "refresh: 'soon' is not a duration"),
        ("feeds:\n  - name: a\n    location: x\n    format: csvish\n", 4, "unknown feed format 'csvish'"),
        ("feeds:\n  - name: a\n    location: x\n    types: [ip, mutex]\n", 4, "unknown indicator type"),
        ("feeds:\n  - name: a\n    location: x\n    confidence: 101\n", 4, "confidence must be"),
        ("feeds:\n  - name: a\n    location: x\n    kind: block\n", 4, "kind must be one of"),
        ("feeds:\n  - name: a\n    location: x\n    colour: red\n", 4, "unknown key 'colour' in feed"),
        ("feeds:\n  - name: a\n    location: ftp://x/y\n", 3, "scheme 'ftp' not supported"),
        ("feeds:\n  - name: a b\n    location: x\n", 2, "name must be"),
        ("feeds:\n  - name: a\n", 2, "feed: missing required key 'location'"),
        ("feeds:\n  - name: a\n    location: x\n    retries: 99\n", 4, "retries must be"),
        (
            "feeds:\n  - name: a\n    location: x\n    headers:\n      Auth-Key: ${NOPE}\n",
            5,
            "NOPE is not set",
        ),
        ("feeds:\n  - name: a\n    location: x\n  - name: a\n    location: y\n", 4, "already used"),
        ("feeds:\n  - name: a\n    location: [x\n", 4, "not valid YAML"),
        ("feeds: {a: 1}\n", 1, "expected a list of feeds"),
        ("feedz: []\n", 1, "unknown key 'feedz' in the feed configuration"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads_feeds(text, source="feeds.yml", env={})
    err = info.value
    assert err.source == "feeds.yml"
    assert err.position == f"line {line}"
    assert message in str(err)
    assert str(err).startswith(f"feeds.yml (line {line}): ")


def test_all_errors_are_collected() -> None:
    text = (
        "feeds:\n  - name: a\n    location: x\n    refresh: soon\n"
        "  - name: b\n    location: y\n    retries: -1\n"
    )
    with pytest.raises(FeedConfigErrors) as info:
        loads_feeds(text, source="f.yml")
    assert [e.position for e in info.value.errors] == ["line 4", "line 7"]
    assert "2 problems" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read feed configuration"):
        load_feeds(tmp_path / "nope.yml")


def test_durations_and_env() -> None:
    assert parse_duration("30m") == timedelta(minutes=30).total_seconds()
    assert parse_duration("1d") == timedelta(days=1).total_seconds()
    assert parse_duration(90) == timedelta(seconds=90).total_seconds()
    assert format_duration(timedelta(hours=1, minutes=30)) == "1h30m"
    for bad in ("0s", "1x", "", "h", -5):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert expand_env("a ${X} ${Y:-dflt}", {"X": "1"}) == "a 1 dflt"
    with pytest.raises(ValueError, match="Z is not set"):
        expand_env("${Z}", {})


def test_feed_config_defaults() -> None:
    feed = FeedConfig(name="x", location="/tmp/x")
    assert feed.format == "auto" and feed.kind == "intel" and feed.retries == 3 and feed.enabled
