"""The envelope: agent.*, log.file.path, labels and tags added to a document, as bytes (native
documents, in Python and in the native core) and as a dict, never touching anything else."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shipper.config import load_file, resolve
from shipper.envelope import Envelope, FilePath, agent_id, parse_labels, wrap
from shipper.errors import ConfigError
from shipper.native import native

NATIVE_LIKE = (
    b'{"@timestamp":"2024-05-01T10:00:00.123Z","event":{"kind":"event","code":"1"},'
    b'"host":{"name":"WS1"},"log":{"level":"information"},"process":{"name":"log"},"ecs":{"version":"8"}}'
)


def _envelope(tmp_path: Path) -> Envelope:
    return Envelope.for_run(tmp_path, name="collector-1", labels={"case": "IR-1"}, tags=["ir", "ir", "x"])


def test_wrap_merges_log_file_and_appends_the_run_fields(tmp_path: Path) -> None:
    env = _envelope(tmp_path)
    out = orjson.loads(wrap(NATIVE_LIKE, env.tail, FilePath.of("rel/sysmon.ndjson").json))
    before = orjson.loads(NATIVE_LIKE)
    assert out["log"] == {"level": "information", "file": {"path": str(Path("rel/sysmon.ndjson").resolve())}}
    assert out["agent"]["type"] == "sysmon-ship" and out["agent"]["name"] == "collector-1"
    assert out["labels"] == {"case": "IR-1"} and out["tags"] == ["ir", "x"]
    assert {k: v for k, v in out.items() if k not in ("agent", "labels", "tags", "log")} == {
        k: v for k, v in before.items() if k != "log"
    }
    no_log = orjson.loads(wrap(b'{"a":1}', env.tail, FilePath.of("/x", label="/old/name").json))
    assert no_log["log"] == {"file": {"path": "/old/name"}} and no_log["a"] == 1
    assert FilePath.of("-") == FilePath(None, b"")  # standard input has no file


def test_the_native_core_wraps_as_python_does(tmp_path: Path) -> None:
    core = native()
    if core is None:
        pytest.skip("native core not built")
    env = _envelope(tmp_path)
    log_file = FilePath.of("/var/log/sysmon.ndjson").json
    (line,) = core.bulk_lines(
        [NATIVE_LIKE], ["id-1"], "p-events-", "2026-01-01T00:00:00.000Z", env.tail, log_file
    )
    action, doc, _ = line.split(b"\n")
    assert orjson.loads(action) == {"create": {"_index": "p-events-2024.05", "_id": "id-1"}}
    expected = orjson.loads(wrap(NATIVE_LIKE, env.tail, log_file))
    expected["event"] = {"ingested": "2026-01-01T00:00:00.000Z", **expected["event"]}
    assert orjson.loads(doc) == expected


def test_dict_documents_keep_their_own_log_file_path(tmp_path: Path) -> None:
    env = _envelope(tmp_path)
    doc = {"log": {"file": {"path": "/from/the/error"}}, "error": {"message": "bad"}}
    env.apply(doc, FilePath.of("/other"))
    assert doc["log"]["file"]["path"] == "/from/the/error" and doc["agent"]["id"] == env.agent_id
    plain: dict[str, object] = {"event": {}}
    env.apply(plain, FilePath.of("/other"))
    assert plain["log"] == {"file": {"path": "/other"}}


def test_agent_id_is_kept_in_the_state_dir(tmp_path: Path) -> None:
    first = agent_id(tmp_path)
    assert agent_id(tmp_path) == first == (tmp_path / "agent-id").read_text().strip()
    assert Envelope.for_run(tmp_path).ephemeral_id != Envelope.for_run(tmp_path).ephemeral_id


def test_labels_from_flags_and_from_the_config_file(tmp_path: Path) -> None:
    assert parse_labels(["case=IR-2026-114", "team=blue=1"], "--label") == {
        "case": "IR-2026-114",
        "team": "blue=1",
    }
    for bad in ("nokey", "a.b=1", "=x"):
        with pytest.raises(ConfigError, match="label"):
            parse_labels([bad], "--label")
    cfg_file = tmp_path / "shipper.yml"
    cfg_file.write_text("agent:\n  name: wef-1\nlabels:\n  case: IR-7\n  site: hq\ntags: [wef]\n")
    cfg = resolve(str(cfg_file), env={}, labels={"case": "IR-8"}, tags=("ir",))
    assert (
        cfg.agent_name == "wef-1"
        and cfg.labels == {"case": "IR-8", "site": "hq"}
        and cfg.tags == ("wef", "ir")
    )
    cfg_file.write_text("labels:\n  a.b: 1\n")
    with pytest.raises(ConfigError, match="line 2"):
        load_file(cfg_file)
