"""Refusals that say nothing about the documents (a write block, rights) stop the run: nothing is
dead-lettered and the checkpoint does not move past them, so a rerun once the cause is fixed
ships everything. Dead letters that were written can be replayed once their cause is fixed."""

from __future__ import annotations

import json
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
