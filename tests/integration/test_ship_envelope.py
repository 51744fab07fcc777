"""On the real node: every shipped document says which collector shipped it, from which file,
under which labels and tags, all mapped; none of it changes an _id, so a second shipment with
other labels adds nothing and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from shipper.es import ClusterSettings
from shipper.inputs import expand_inputs
from shipper.pipeline import iter_documents
from tests.shipping import SHIP, count, generate_day, run


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_day(tmp_path_factory.mktemp("day"), events=1500)


def _ship(prefix: str, state: Path, url: str, day: Path, *extra: str) -> dict[str, int]:
    args = [*SHIP, "ship", str(day), "--index-prefix", prefix, "--state-dir", str(state), "--json"]
    return json.loads(run([*args, "--no-progress", *extra], url).stdout)


def test_documents_carry_agent_file_labels_and_tags(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, day: Path, tmp_path: Path
) -> None:
    run([*SHIP, "setup", "--index-prefix", prefix], es_settings.url)
    labels = ["--label", "case=IR-2026-114", "--tag", "ir", "--agent-name", "wef-collector-1"]
    first = _ship(prefix, tmp_path / "s1", es_settings.url, day, *labels)
    assert first["shipped"] == 1500
    es.indices.refresh(index=f"{prefix}-events")
    alias = f"{prefix}-events"

    def hits(query: dict[str, object]) -> int:
        return int(es.count(index=alias, query=query)["count"])

    path = str(day.resolve())
    assert hits({"term": {"labels.case": "IR-2026-114"}}) == 1500  # mapped: term queries work
    assert hits({"term": {"tags": "ir"}}) == 1500
    assert hits({"term": {"agent.type": "sysmon-ship"}}) == 1500
    assert hits({"term": {"agent.name": "wef-collector-1"}}) == 1500
    assert hits({"term": {"log.file.path": path}}) == 1500
    agent_id = (tmp_path / "s1" / "agent-id").read_text().strip()
    assert hits({"term": {"agent.id": agent_id}}) == 1500
    mapping = es.indices.get_mapping(index=alias)
    props = next(iter(mapping.body.values()))["mappings"]["properties"]
    assert props["labels"]["properties"]["case"]["type"] == "keyword"
    assert props["agent"]["properties"]["ephemeral_id"]["type"] == "keyword"
    # the _ids are the event's alone: those of the documents without any envelope
    ids = sorted(h["_id"] for h in es.search(index=alias, size=2000, source=False)["hits"]["hits"])
    assert ids == sorted(item.doc_id for item in iter_documents([str(day)]))
    # shipped again from elsewhere with other labels: nothing added, nothing changed
    second = _ship(prefix, tmp_path / "s2", es_settings.url, day, "--label", "case=OTHER")
    assert second["shipped"] == 0 and second["duplicates"] == 1500
    es.indices.refresh(index=alias)
    assert count(es, prefix) == 1500 and hits({"term": {"labels.case": "OTHER"}}) == 0


def test_each_configured_input_adds_its_own_labels_and_tags(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, day: Path, tmp_path: Path
) -> None:
    """``inputs: [{path:, labels:, tags:}]``: every document of a source gets the labels of the
    input that names it on top of the run's (the input's value wins for a shared key); a source
    of an input without labels gets the run's alone. The _ids stay the event's."""
    run([*SHIP, "setup", "--index-prefix", prefix], es_settings.url)
    case = tmp_path / "case-114"
    case.mkdir()
    other = generate_day(tmp_path / "other", events=700, seed=23)
    (case / "evidence.ndjson").write_bytes(other.read_bytes())
    config = tmp_path / "shipper.yml"
    config.write_text(
        "labels: {site: hq, case: none}\n"
        "tags: [wef]\n"
        "inputs:\n"
        f"  - {day}\n"
        f"  - path: {case}/\n"
        "    labels: {case: IR-2026-114}\n"
        "    tags: [ir]\n"
    )
    args = [*SHIP, "ship", "--config", str(config), "--index-prefix", prefix]
    out = json.loads(
        run([*args, "--state-dir", str(tmp_path / "s"), "--json", "--no-progress"], es_settings.url).stdout
    )
    assert out["shipped"] == 2200
    alias = f"{prefix}-events"
    es.indices.refresh(index=alias)

    def hits(*terms: tuple[str, str]) -> int:
        query = {"bool": {"filter": [{"term": {k: v}} for k, v in terms]}}
        return int(es.count(index=alias, query=query)["count"])

    evidence = str((case / "evidence.ndjson").resolve())
    assert hits(("labels.case", "IR-2026-114"), ("log.file.path", evidence)) == 700
    assert hits(("labels.site", "hq"), ("tags", "ir"), ("tags", "wef")) == 700
    assert hits(("labels.case", "none"), ("log.file.path", str(day.resolve()))) == 1500
    assert hits(("tags", "ir")) == 700 and hits(("tags", "wef")) == 2200
    ids = sorted(h["_id"] for h in es.search(index=alias, size=3000, source=False)["hits"]["hits"])
    assert ids == sorted(item.doc_id for item in iter_documents(expand_inputs([str(day), str(case)])))
