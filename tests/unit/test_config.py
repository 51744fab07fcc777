from __future__ import annotations

from pathlib import Path

import pytest

from shipper.config import load_file, resolve
from shipper.errors import ConfigError

GOOD = """\
cluster:
  urls: [https://es1.example:9200, https://es2.example:9200/]
  username: shipper
  password_file: {pw}
  ca_certs: /etc/ca.crt
index:
  prefix: corp
  replicas: 1
bulk:
  max_docs: 500
  in_flight: 4
inputs: [/var/log/sysmon]
state_dir: /var/lib/sysmon
"""


def test_file_env_flags_precedence_and_masking(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret-from-file\n")
    cfg_file = tmp_path / "c.yml"
    cfg_file.write_text(GOOD.format(pw=pw))
    cfg = resolve(str(cfg_file), env={})
    assert cfg.all_urls() == ("https://es1.example:9200", "https://es2.example:9200")
    assert cfg.cluster.password == "s3cret-from-file" and cfg.cluster.verify_certs is True
    assert (cfg.index_prefix, cfg.replicas, cfg.bulk.max_docs, cfg.bulk.in_flight) == ("corp", 1, 500, 4)
    assert cfg.bulk.max_bytes == 5 * 1024 * 1024  # default kept
    assert cfg.inputs == ("/var/log/sysmon",) and cfg.state_dir == "/var/lib/sysmon"

    env = {"ES_URL": "https://other:9200", "ES_PASSWORD": "env-secret", "SYSMON_INDEX_PREFIX": "envp"}
    cfg = resolve(str(cfg_file), env=env)
    assert cfg.all_urls() == ("https://other:9200",) and cfg.cluster.password == "env-secret"
    assert cfg.index_prefix == "envp"

    cfg = resolve(str(cfg_file), env=env, url="https://flag:9200", index_prefix="flagp", bulk={"max_docs": 7})
    assert cfg.all_urls() == ("https://flag:9200",) and cfg.index_prefix == "flagp" and cfg.bulk.max_docs == 7

    shown = repr(cfg.masked())
    assert "env-secret" not in shown and "s3cret" not in shown and "****" in shown


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("cluster:\n  url: http://x:9200\n  pasword: x\n", 3, "unknown key 'pasword'"),
        ("index:\n  prefix: Bad Prefix\n", 2, "index.prefix"),
        ("bulk:\n  max_docs: lots\n", 2, "bulk.max_docs must be an integer"),
        ("cluster:\n  verify_certs: maybe\n", 2, "true or false"),
        ("inputs: [a\n", 2, "not valid YAML"),
        ("cluster:\n  url: ftp://x\n", 2, "not an http(s) URL"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    f = tmp_path / "bad.yml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_file(f)
    msg = str(info.value)
    assert str(f) in msg and f"line {line}" in msg and words in msg


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    f = tmp_path / "empty.yml"
    f.write_text("")
    cfg = load_file(f)
    assert cfg.index_prefix == "sysmon" and cfg.cluster.verify_certs is True and cfg.source == str(f)
