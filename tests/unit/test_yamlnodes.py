"""The one YAML node reader: typed accessors, text or YAML values, raise or collect, file:line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from shipper.errors import ConfigError, SysmonError
from shipper.yamlnodes import NodeReader, Section, line_error, line_of, plain


def _raising(typed: bool = False) -> NodeReader[ConfigError]:
    return NodeReader("c.yml", line_error, typed=typed)


def _collecting(typed: bool = True) -> NodeReader[ConfigError]:
    return NodeReader("c.yml", line_error, collect=True, typed=typed)


def _top(r: NodeReader[ConfigError], text: str) -> Section[ConfigError]:
    root = r.compose(text)
    assert root is not None
    return r.section(root, "top")


def _value(r: NodeReader[ConfigError], text: str) -> yaml.Node:
    return _top(r, text).keys["v"][1]


def _fails(r: NodeReader[ConfigError], read: object, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        read()  # type: ignore[operator]
    err = info.value
    assert isinstance(err, SysmonError) and (err.source, err.position) == ("c.yml", f"line {line}")
    assert str(err) == f"c.yml (line {line}): {words}"


def test_compose_empty_and_broken_yaml() -> None:
    assert _raising().compose("") is None
    r = _collecting()
    _fails(
        r,
        lambda: r.compose("a: 1\nb: [x\n"),
        3,
        "not valid YAML: expected ',' or ']', but got '<stream end>'",
    )


def test_mapping_keys_duplicates_and_lines() -> None:
    s = _top(_raising(), "a: 1\nb:\n  c: 2\n")
    assert list(s.keys) == ["a", "b"] and line_of(s.keys["b"][0]) == 2
    r = _raising()
    _fails(r, lambda: _top(r, "a: 1\na: 2\n"), 2, "top: 'a' given twice")
    _fails(r, lambda: _top(r, "? [a]\n: 1\n"), 1, "top: keys must be plain names")
    _fails(r, lambda: _top(r, "- a\n"), 1, "top must be a mapping")


def test_unknown_keys_list_the_known_ones_and_apply() -> None:
    r = _raising()
    s = _top(r, "b: 1\na: x\n")
    assert s.apply({"a": lambda n: r.string(n, "a"), "b": lambda n: r.integer(n, "b")}) == {"b": 1, "a": "x"}
    s = _top(r, "a: 1\nzz: 2\n")
    _fails(r, lambda: s.check(["b", "a"]), 2, "unknown key 'zz' in top (allowed: a, b)")


def test_text_scalars_read_as_written() -> None:
    r = _raising(typed=False)
    assert r.string(_value(r, "v: ' padded '\n"), "v") == "padded"
    assert r.string(_value(r, "v: 12345\n"), "v") == "12345"  # a password that looks like a number
    assert r.scalar(_value(r, "v: true\n"), "v") == "true"
    assert r.integer(_value(r, "v: '500'\n"), "v") == 500
    assert r.integer(_value(r, "v: 010\n"), "v") == 10  # its text, not YAML 1.1's octal
    assert r.integer(_value(r, "v: 1_000\n"), "v") == 1000
    assert r.number(_value(r, "v: '2.5'\n"), "v") == 2.5
    for word, value in (
        ("yes", True),
        ("On", True),
        ("1", True),
        ("no", False),
        ("OFF", False),
        ("0", False),
    ):
        assert r.boolean(_value(r, f"v: {word}\n"), "v") is value
    assert r.strings(_value(r, "v: one\n"), "v") == ("one",)
    assert r.strings(_value(r, "v: [a, 2, ' c ']\n"), "v") == ("a", "2", "c")
    assert r.strings(_value(r, "v: []\n"), "v") == ()


def test_typed_scalars_are_yaml_values() -> None:
    r = _collecting(typed=True)
    assert r.integer(_value(r, "v: 010\n"), "v") == 8
    assert r.integer(_value(r, "v: 0x1F\n"), "v", maximum=100) == 31
    assert r.number(_value(r, "v: 3\n"), "v") == 3.0
    assert r.boolean(_value(r, "v: yes\n"), "v") is True
    assert r.scalar(_value(r, "v: 7\n"), "v") == "7"
    assert r.scalar(_value(r, "v: yes\n"), "v") == "True"  # as feed header values always were
    assert r.strings(_value(r, "v: [1, a]\n"), "v", pattern=re.compile(r"^\w+$")) == ("1", "a")
    assert r.duration(_value(r, "v: 90\n"), "v") == 90
    assert r.duration(_value(r, "v: 1h30m\n"), "v") == 5400
    assert r.errors == []
    # quoted numbers are text, and text is not a number
    assert r.integer(_value(r, "v: '5'\n"), "v", default=-1) == -1
    assert r.string(_value(r, "v: 123\n"), "v", default="d") == "d"
    assert r.boolean(_value(r, "v: 'yes'\n"), "v", default=True) is True
    assert [str(e) for e in r.errors] == [
        "c.yml (line 1): v must be an integer of at least 0",
        "c.yml (line 1): v must be a non-empty string",
        "c.yml (line 1): v must be true or false",
    ]


@pytest.mark.parametrize(
    ("text", "read", "words"),
    [
        ("v: [a]\n", lambda r, n: r.string(n, "v"), "v must be a single value"),
        ("v: ''\n", lambda r, n: r.string(n, "v"), "v must be a non-empty string"),
        ("v: {a: 1}\n", lambda r, n: r.scalar(n, "v"), "v must be a single value"),
        ("v: lots\n", lambda r, n: r.integer(n, "v", minimum=1), "v must be an integer of at least 1"),
        ("v: 0\n", lambda r, n: r.integer(n, "v", minimum=1), "v must be an integer of at least 1"),
        ("v: 101\n", lambda r, n: r.integer(n, "v", maximum=100), "v must be an integer from 0 to 100"),
        ("v: x\n", lambda r, n: r.number(n, "v"), "v must be a positive number"),
        ("v: 0\n", lambda r, n: r.number(n, "v"), "v must be a positive number"),
        ("v: 2\n", lambda r, n: r.number(n, "v", maximum=1), "v must be a number from 0 to 1"),
        ("v: nan\n", lambda r, n: r.number(n, "v", maximum=1), "v must be a number from 0 to 1"),
        ("v: maybe\n", lambda r, n: r.boolean(n, "v"), "v must be true or false"),
        ("v: {a: 1}\n", lambda r, n: r.strings(n, "v"), "v must be a list of strings"),
        ("v:\n  - a\n  - ''\n", lambda r, n: r.strings(n, "v"), "v: each entry must be a non-empty string"),
        (
            "v: soon\n",
            lambda r, n: r.duration(n, "v"),
            "v: 'soon' is not a duration like 30s, 5m, 1h30m, 7d or 2w",
        ),
        ("v: 0m\n", lambda r, n: r.duration(n, "v"), "v: a duration must be positive, not '0m'"),
    ],
)
def test_each_accessor_raises_with_file_and_line(text: str, read: object, words: str) -> None:
    r = _raising()
    node = _value(r, "x: 1\n" + text)
    line = 4 if "each entry" in words else 2  # the entry's own line, else the value's
    _fails(r, lambda: read(r, node), line, words)  # type: ignore[operator]


def test_a_nan_stays_a_positive_number_as_before() -> None:
    r = _raising()
    value = r.number(_value(r, "v: nan\n"), "v")
    assert value != value


def test_secret_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    r = _raising()
    assert r.secret_file(_value(r, f"v: {tmp_path / 'pw'}\n"), "v") == "s3cret"
    node = _value(r, f"v: {tmp_path / 'nope'}\n")
    _fails(
        r,
        lambda: r.secret_file(node, "v"),
        1,
        f"v: cannot read {tmp_path / 'nope'}: No such file or directory",
    )


def test_collecting_goes_on_with_defaults_and_keeps_every_error() -> None:
    r = _collecting()
    s = _top(r, "a: x\nb: [1, '', abc]\nc: {d: 1}\nzz: 1\nzz: 2\n")
    s.check(("a", "b", "c"))
    assert s.integer("a", default=7) == 7
    assert s.strings("b", pattern=re.compile(r"^\d+$"), kind="number") == ("1",)
    assert s.string("c", default="dflt") == "dflt"
    assert s.string("missing", required=True) == ""
    assert s.duration("missing") == 0 and s.boolean("missing", default=True) is True
    assert s.section("missing") is None and s.sections("missing", "item") == []
    assert [str(e) for e in r.errors] == [
        "c.yml (line 5): top: 'zz' given twice",
        "c.yml (line 4): unknown key 'zz' in top (allowed: a, b, c)",
        "c.yml (line 1): 'a' must be an integer from 0 to 1000000000",
        "c.yml (line 2): 'b': each entry must be a non-empty string",
        "c.yml (line 2): 'b': 'abc' is not a valid number",
        "c.yml (line 3): 'c' must be a single value",
        "c.yml (line 1): top: missing required key 'missing'",
    ]


def test_required_lists_nested_sections_and_lists_of_sections() -> None:
    r = _collecting()
    s = _top(r, "a: []\nsub:\n  k: v\nitems:\n  - {k: 1}\n  - 5\nnot_a_list: x\n")
    assert s.strings("a", required=True) == ()
    sub = s.section("sub", what="the sub")
    assert sub is not None and sub.string("k") == "v" and sub.what == "the sub"
    items = s.sections("items", "item")
    assert [i.integer("k") for i in items] == [1, 0]
    assert s.sections("not_a_list", "item") == []
    assert [str(e) for e in r.errors] == [
        "c.yml (line 1): 'a' must not be empty",
        "c.yml (line 6): item must be a mapping",
        "c.yml (line 7): 'not_a_list' must be a list",
    ]


class _LineError(ConfigError):
    """A caller's own flavour (like the rules' ``file:line: message``)."""

    def __init__(self, message: str, line: int) -> None:
        self.line = line
        super().__init__(message, source=f"r.yml:{line}")

    def __str__(self) -> str:
        return f"r.yml:{self.line}: {self.message}"


def test_the_callers_error_type_is_kept() -> None:
    r = NodeReader("r.yml", lambda m, _s, line: _LineError(m, line or 1), collect=True, typed=True)
    root = r.compose("a: 1\nb: x\n")
    assert root is not None
    s = r.section(root, "rule")
    s.integer("b")
    assert [str(e) for e in r.errors] == ["r.yml:2: 'b' must be an integer from 0 to 1000000000"]
    assert all(isinstance(e, _LineError) and isinstance(e, ConfigError) for e in r.errors)
    with pytest.raises(_LineError, match=r"^r\.yml:2: not valid YAML"):
        r.compose("a: 1\n  b: 2\n")


def test_plain_builds_free_form_parts() -> None:
    root = yaml.compose("q: {bool: {filter: [{term: {a: 1}}]}}\n")
    assert root is not None
    assert plain(root.value[0][1]) == {"bool": {"filter": [{"term": {"a": 1}}]}}
