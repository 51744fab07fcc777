"""Refusals that say nothing about the documents (a write block, rights) stop the run: nothing is
dead-lettered and the checkpoint does not move past them, so a rerun once the cause is fixed
ships everything. Dead letters that were written can be replayed once their cause is fixed."""

from __future__ import annotations

import fcntl
import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from shipper.es import ClusterSettings
from tests.shipping import SHIP, acked, count, generate_day, run, ship_args


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_day(tmp_path_factory.mktemp("day"), events=3000, seed=23)


@pytest.fixture
def ready(prefix: str, es_settings: ClusterSettings) -> str:
    run([*SHIP, "setup", "--index-prefix", prefix], es_settings.url)
    return prefix


def _month(day: Path) -> str:
    return str(json.loads(day.open().readline())["@timestamp"][:7].replace("-", "."))


def test_a_write_block_stops_the_run_without_dead_letters_or_checkpoint(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path
) -> None:
    index = f"{ready}-events-{_month(day)}"
    es.indices.create(index=index)
    es.indices.put_settings(index=index, settings={"index.blocks.write": True})
    state, dead = tmp_path / "state", tmp_path / "dead.ndjson"
    args = [*ship_args(ready, state, str(day)), "--dead-letter", str(dead)]
    blocked = run(args, es_settings.url, check=False)
    assert blocked.returncode == 1, blocked.stderr
    assert "refuses writes" in blocked.stderr and "cluster_block_exception" in blocked.stderr
    assert "Traceback" not in blocked.stderr
    assert not dead.exists()
    assert acked(state) == 0
    assert count(es, ready) == 0
    # the block is lifted: the same command ships every event, none twice
    es.indices.put_settings(index=index, settings={"index.blocks.write": False})
    again = json.loads(run(args, es_settings.url).stdout)
    assert again["shipped"] == 3000 and again["dead_lettered"] == 0
    assert count(es, ready) == 3000


def _replay(path: Path, url: str, prefix: str) -> subprocess.CompletedProcess[str]:
    return run([*SHIP, "replay", str(path), "--index-prefix", prefix, "--json"], url, check=False)


def _dns_in_cluster(es: Elasticsearch, prefix: str) -> int:
    es.indices.refresh(index=f"{prefix}-events*")
    return int(es.count(index=f"{prefix}-events", query={"term": {"event.code": "22"}})["count"])


def test_replay_resends_dead_letters_once_their_cause_is_fixed(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path
) -> None:
    index = f"{ready}-events-{_month(day)}"
    dns_as_number = {"dns": {"properties": {"question": {"properties": {"name": {"type": "long"}}}}}}
    es.indices.create(index=index, mappings={"properties": dns_as_number})
    dead = tmp_path / "dead.ndjson"
    shipped = run([*ship_args(ready, tmp_path / "state", str(day)), "--dead-letter", str(dead)],
                  es_settings.url, check=False)  # fmt: skip
    assert shipped.returncode == 3, shipped.stderr
    dns = json.loads(shipped.stdout)["dead_lettered"]
    assert dns > 0 and len(dead.read_text().splitlines()) == dns
    original = tmp_path / "original.ndjson"
    shutil.copyfile(dead, original)
    with dead.open("a") as fh:
        fh.write('{"status": 400, "document": {"no": "index"}}\n')  # a damaged line stays as it is

    # the cause is still there: every document is refused again, with today's reason
    still = _replay(dead, es_settings.url, ready)
    assert still.returncode == 3, still.stderr
    assert json.loads(still.stdout) | {"path": ""} == {
        "path": "", "documents": dns, "shipped": 0, "duplicates": 0, "rejected": dns, "unreadable": 1,
        "removed": False,
    }  # fmt: skip
    assert f"{dead} (line {dns + 1}): a dead letter needs index, _id and document" in still.stderr
    lines = dead.read_text().splitlines()
    assert len(lines) == dns + 1 and lines[0] == '{"status": 400, "document": {"no": "index"}}'
    assert stat.S_IMODE(dead.stat().st_mode) == 0o600

    # a write block stops the replay and leaves the file as it was
    es.indices.put_settings(index=index, settings={"index.blocks.write": True})
    before = dead.read_bytes()
    blocked = _replay(dead, es_settings.url, ready)
    assert blocked.returncode == 1 and "refuses writes" in blocked.stderr, blocked.stderr
    assert dead.read_bytes() == before
    es.indices.put_settings(index=index, settings={"index.blocks.write": False})

    # fixed: the month index comes back from the template; every DNS event goes in
    es.indices.delete(index=index)
    fixed = _replay(dead, es_settings.url, ready)
    assert fixed.returncode == 3, fixed.stderr  # the damaged line is still kept
    assert json.loads(fixed.stdout)["shipped"] == dns
    assert dead.read_text().splitlines() == ['{"status": 400, "document": {"no": "index"}}']
    assert _dns_in_cluster(es, ready) == dns

    # the same letters again: all already in, nothing twice, and the file is removed
    again = _replay(original, es_settings.url, ready)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["duplicates"] == dns and not original.exists()
    assert _dns_in_cluster(es, ready) == dns


def test_replay_refuses_a_file_a_running_shipper_writes(
    es_settings: ClusterSettings, ready: str, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.ndjson"
    dead.write_text("")
    with dead.open("ab") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)  # as the sink holds it
        busy = _replay(dead, es_settings.url, ready)
    assert busy.returncode == 1 and "in use by a running shipper" in busy.stderr, busy.stderr
    assert dead.exists()


def test_a_dead_letter_reason_quoting_a_secret_is_masked_and_its_document_kept(
    es: Elasticsearch, es_settings: ClusterSettings, ready: str, day: Path, tmp_path: Path
) -> None:
    """The cluster quotes the value it could not parse; a command line with a password in a URL
    must not reach the dead-letter reason or stderr that way. The document is the event: kept
    as it was, so that a replay sends it unchanged."""
    secret_line = "curl https://admin:S3cretPW@intranet.example/x?token=T0kenValue"
    event = next(d for d in map(json.loads, day.open()) if str(d["winlog"]["event_id"]) == "1")
    event["winlog"]["event_data"]["CommandLine"] = secret_line
    one = tmp_path / "one.ndjson"
    one.write_text(json.dumps(event) + "\n")
    es.indices.create(
        index=f"{ready}-events-{event['@timestamp'][:7].replace('-', '.')}",
        mappings={"properties": {"process": {"properties": {"command_line": {"type": "long"}}}}},
    )
    dead = tmp_path / "dead.ndjson"
    proc = run(
        [*ship_args(ready, tmp_path / "state", str(one)), "--dead-letter", str(dead)],
        es_settings.url,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
    reason = letter["error"]["reason"]
    assert "process.command_line" in reason and "****" in reason, reason
    assert "S3cretPW" not in reason and "T0kenValue" not in reason
    assert "S3cretPW" not in proc.stderr and "S3cretPW" not in proc.stdout
    assert letter["document"]["process"]["command_line"] == secret_line
