"""Labels and tags per configured input: read from the configuration file (errors with file and
line), and found for every source an input names, as ``ship`` expands it and ``watch`` finds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipper.config import load_file
from shipper.envelope import Envelope, InputLabels
from shipper.errors import ConfigError
from shipper.inputs import SourceLabels, expand_inputs


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yml"
    path.write_text(text)
    return path


def test_inputs_take_paths_and_labelled_entries(tmp_path: Path) -> None:
    cfg = load_file(
        _config(
            tmp_path,
            "labels: {site: hq}\n"
            "inputs:\n"
            "  - /var/log/sysmon\n"
            "  - path: /cases/114\n"
            "    labels: {case: IR-2026-114, site: branch}\n"
            "    tags: [ir, ir]\n"
            "  - path: /cases/115\n",
        )
    )
    assert cfg.inputs == ("/var/log/sysmon", "/cases/114", "/cases/115")
    assert cfg.input_labels == {
        "/cases/114": InputLabels({"case": "IR-2026-114", "site": "branch"}, ("ir",)),
        "/cases/115": InputLabels({}, ()),
    }
    assert cfg.masked()["inputs"][1] == {
        "path": "/cases/114",
        "labels": {"case": "IR-2026-114", "site": "branch"},
        "tags": ["ir"],
    }
    assert cfg.masked()["inputs"][0] == "/var/log/sysmon"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("inputs:\n  - path: /x\n    colour: red\n", 3, "unknown key 'colour'"),
        ("inputs:\n  - labels: {a: b}\n", 2, "missing required key 'path'"),
        ("inputs:\n  - path: /x\n    labels: {bad.key: v}\n", 3, "bad.key"),
        ("inputs:\n  - path: /x\n    labels: [a]\n", 3, "mapping"),
    ],
)
def test_bad_input_entries_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_file(path)
    assert str(path) in str(err.value) and f"line {line}" in str(err.value)
    assert words in str(err.value)


def test_an_inputs_labels_extend_the_runs(tmp_path: Path) -> None:
    run = Envelope("collector", "id-1", labels={"site": "hq", "case": "none"}, tags=("wef",))
    ext = run.extended(InputLabels({"case": "IR-7"}, ("ir", "wef")))
    assert ext.labels == {"site": "hq", "case": "IR-7"} and ext.tags == ("wef", "ir")
    assert ext.ephemeral_id == run.ephemeral_id and ext.agent_id == run.agent_id
    assert b'"labels":{"site":"hq","case":"IR-7"}' in ext.tail
    assert b'"case":"none"' in run.tail  # the run's own envelope is unchanged


def test_source_labels_cover_files_globs_and_later_files_in_folders(tmp_path: Path) -> None:
    case = tmp_path / "case"
    (case / "sub").mkdir(parents=True)
    (case / "a.evtx").write_bytes(b"")
    (case / "sub" / "b.xml").write_bytes(b"")
    other = tmp_path / "other"
    other.mkdir()
    (other / "c.json").write_bytes(b"")
    (other / "d.json").write_bytes(b"")
    first, second = InputLabels({"case": "1"}), InputLabels({"case": "2"})
    inputs = [str(case), str(other / "c.*"), str(other / "*.json"), "-"]
    found: dict[str, str] = {}
    expand_inputs(inputs, found)
    index = SourceLabels(
        inputs,
        {str(case): first, str(other / "c.*"): second, str(other / "*.json"): first, "-": first},
        found,
    )
    assert index.get(str(case / "sub" / "b.xml")) is first
    assert index.get(str(case / "new-later.evtx")) is first  # found by watch after planning
    assert index.get(str(other / "c.json")) is second  # the first input naming it wins
    assert index.get(str(other / "d.json")) is first
    assert index.get(str(tmp_path / "elsewhere.evtx")) is None
    assert index.get("-") is None  # standard input is never a configured path's
    assert not SourceLabels([str(case)], {}, found)


def test_source_labels_come_from_the_one_expansion(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    (case / "a.evtx").write_bytes(b"")
    (tmp_path / "c.json").write_bytes(b"")
    (tmp_path / "d.json").write_bytes(b"")
    inputs = [str(tmp_path / "c.*"), str(tmp_path / "*.json"), str(case)]
    labelled = {inputs[1]: InputLabels({"k": "json"}), inputs[2]: InputLabels({"k": "case"})}
    found: dict[str, str] = {}
    paths = expand_inputs(inputs, found)
    assert found == {
        str(Path(p).resolve()): i for p, i in zip(paths, [inputs[0], inputs[1], inputs[2]], strict=True)
    }
    once = SourceLabels(inputs, labelled, found)
    assert once.get(str(case / "a.evtx")) == InputLabels({"k": "case"})
    assert once.get(str(case / "later.evtx")) == InputLabels({"k": "case"})  # found by watch later
    # the first input that names a source decides, labelled or not
    assert once.get(str(tmp_path / "c.json")) is None  # named first by the unlabelled input
    assert once.get(str(tmp_path / "d.json")) == InputLabels({"k": "json"})
