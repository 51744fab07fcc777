"""The stream matcher's answer per construct, as Elasticsearch answers on our mapping (the
agreement on real data is tests/integration/test_stream_match.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from detectors.loader import BUILTIN_DIR, load_rules
from detectors.model import Exceptions, FieldRef, Filter, IntelClause, Rule, ValueException
from detectors.stream.rules import NEEDS_HISTORY, StreamRules

BUILTIN = {r.id: r for r in load_rules([BUILTIN_DIR]).rules}


def _rule(lucene: str | None = None, query: dict[str, Any] | None = None, codes: tuple[str, ...] = ("1",),
          **kw: Any) -> Rule:  # fmt: skip
    base = BUILTIN["office-spawns-shell"]
    return replace(base, id=f"r-{lucene or query}", filter=Filter(codes, query=query, lucene=lucene), **kw)


def _doc(code: str = "1", **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"event": {"code": code}}
    for dotted, value in fields.items():
        cur = doc
        parts = dotted.replace("__", ".").split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = value
    return doc


def _matches(rule: Rule, doc: dict[str, Any], intel: Any = None) -> bool:
    """The answer, which the native core and the Python predicates must both give."""
    answers = []
    for native in (True, False):
        compiled = StreamRules.compile([rule], native=native)
        assert rule in compiled.supported, compiled.unsupported
        assert compiled.native_refused == {}
        python_only = rule.filter.intel or rule.type == "intel_match" or rule.exceptions.allowlists
        if native and not python_only and not rule.filter.field_refs:
            assert compiled.native_count == 1, "the native core must run this rule"
        answers.append(rule in compiled.match(doc, intel))
    assert answers[0] == answers[1], f"native {answers[0]}, Python {answers[1]}"
    return answers[0]


EXE = "C:\\Windows\\System32\\cmd.exe"


@pytest.mark.parametrize(
    ("lucene", "expected"),
    [
        ("process.executable:C\\:\\\\Windows\\\\System32\\\\cmd.exe", True),
        ("process.executable:c\\:\\\\windows\\\\system32\\\\cmd.exe", False),  # keyword: case counts
        ("process.executable.caseless:C\\:\\\\WINDOWS\\\\system32\\\\CMD.exe", True),  # normaliser
        ("process.executable.caseless:*\\\\cmd.exe", True),
        ("process.executable.caseless:*\\\\cmd.ex?", True),
        ("process.executable.caseless:*\\\\cmd.e?", False),
        ("process.executable:*\\\\CMD.exe", False),
        ('process.executable:"C:\\\\Windows\\\\System32\\\\cmd.exe"', True),  # a phrase is one term
        ("process.executable.caseless:c\\:\\\\windows\\\\*", True),
        ("process.executable.caseless:/c:.*cmd\\.exe/", True),
        ("process.executable.caseless:/cmd\\.exe/", False),  # a regex matches the whole term
        ("process.executable.caseless:/.*\\\\[a-d]md\\.exe/", True),
        ("process.executable:/.*CMD\\.exe/", False),  # a regexp is never normalised
        ("process.executable.caseless:\\*cmd.exe", False),  # an escaped star is a star
        ("_exists_:process.executable", True),
        ("_exists_:process.parent.executable", False),
        ("process.executable:*", True),
        ("NOT _exists_:process.executable", False),
        ("nosuch.field:x", False),  # unmapped: nothing
        ("NOT nosuch.field:x", True),
        ("process.pid:4242", True),
        ("process.pid:[4000 TO 5000]", True),
        ("process.pid:{4242 TO 5000]", False),
        ("process.pid:>=4242", True),
        ("process.pid:>4242", False),
        ("process.pid:4242.5", False),  # a decimal never equals a long
        ("process.args:\\/c", True),  # multi-valued: any value
        ("process.args:nope OR process.args:dir", True),
        ("process.args:\\/c AND process.args:nope", False),
        # Lucene's classic parser: AND makes its neighbours required, "a OR NOT b" is "a -b"
        ("process.args:dir OR process.args:\\/c AND process.args:nope", False),
        ("process.args:dir OR NOT process.args:\\/c", False),
        ("process.args:dir OR (NOT process.args:\\/c)", True),
        ("process.args:nope OR NOT process.args:zzz", False),
        ("process.args:(nope OR dir)", True),
        ("process.args:(nope dir)", True),  # default operator OR
        ("-process.args:dir", False),
        ("+process.args:dir process.args:nope", True),
    ],
)
def test_query_string(lucene: str, expected: bool) -> None:
    doc = _doc(process__executable=EXE, process__pid=4242, process__args=["cmd.exe", "/c", "dir"])
    assert _matches(_rule(lucene), doc) is expected


@pytest.mark.parametrize(
    ("lucene", "ip", "expected"),
    [
        ("destination.ip:10.0.0.0\\/8", "10.1.2.3", True),
        ("destination.ip:10.0.0.0\\/8", "11.1.2.3", False),
        ("destination.ip:10.1.2.3", "::ffff:10.1.2.3", True),  # IPv4-mapped is the same address
        ("destination.ip:2001\\:db8\\:\\:\\/32", "2001:db8::1", True),
        ("destination.ip:[10.0.0.1 TO 10.0.0.9]", "10.0.0.10", False),
        ("destination.ip:[10.0.0.1 TO 10.0.0.9]", "10.0.0.9", True),
    ],
)
def test_ip_fields(lucene: str, ip: str, expected: bool) -> None:
    assert _matches(_rule(lucene, codes=("3",)), _doc("3", destination__ip=ip)) is expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"term": {"process.name": {"value": "CMD.EXE", "case_insensitive": True}}}, True),
        ({"term": {"process.name": "CMD.EXE"}}, False),
        ({"terms": {"process.name": ["a.exe", "cmd.exe"]}}, True),
        ({"prefix": {"process.executable.caseless": "c:\\windows\\"}}, True),
        ({"wildcard": {"process.executable": {"value": "*\\CMD.exe", "case_insensitive": True}}}, True),
        ({"regexp": {"process.name": {"value": "CMD\\.EXE", "case_insensitive": True}}}, True),
        ({"regexp": {"process.name": "c.d\\.exe"}}, True),
        ({"exists": {"field": "process.name"}}, True),
        ({"range": {"process.pid": {"gt": 4242}}}, False),
        ({"range": {"process.pid": {"gte": 4242, "lt": 5000}}}, True),
        ({"term": {"file.code_signature.signed": False}}, True),
        ({"bool": {"should": [{"term": {"process.name": "x"}}, {"term": {"process.pid": 4242}}]}}, True),
        ({"bool": {"must_not": [{"term": {"process.name": "cmd.exe"}}]}}, False),
        (
            {
                "bool": {
                    "should": [{"term": {"process.name": "cmd.exe"}}, {"term": {"process.pid": 4242}}],
                    "minimum_should_match": 2,
                }
            },
            True,
        ),
        (
            {
                "bool": {
                    "filter": [{"term": {"process.pid": 4242}}],
                    "should": [{"term": {"process.name": "x"}}],
                }
            },
            True,
        ),
    ],
)
def test_query_dsl(query: dict[str, Any], expected: bool) -> None:
    doc = _doc(process__name="cmd.exe", process__executable=EXE, process__pid=4242,
               file__code_signature__signed=False)  # fmt: skip
    assert _matches(_rule(query=query), doc) is expected


def test_event_codes_and_value_exceptions() -> None:
    rule = _rule("process.name:cmd.exe", exceptions=Exceptions(values=(
        ValueException("process.executable.caseless", ("C:\\WINDOWS\\system32\\cmd.exe",)),)))  # fmt: skip
    assert not _matches(rule, _doc(process__name="cmd.exe", process__executable=EXE))
    assert _matches(rule, _doc(process__name="cmd.exe", process__executable="C:\\tmp\\cmd.exe"))
    assert not _matches(rule, _doc("3", process__name="cmd.exe", process__executable="C:\\tmp\\cmd.exe"))


def test_ignore_above_values_are_not_indexed() -> None:
    long_line = "powershell " + "A" * 9000
    assert not _matches(
        _rule("process.command_line.caseless:powershell*"), _doc(process__command_line=long_line)
    )
    assert _matches(
        _rule("process.command_line.caseless:powershell*"), _doc(process__command_line="powershell x")
    )


class FakeIntel:
    """``has`` answers from a set of (kind, field, value)."""

    def __init__(self, *known: tuple[str, str, str]) -> None:
        self.known = set(known)

    def has(self, kind: str, field: str, value: str, feeds: Any, types: Any) -> bool:
        return (kind, field, value) in self.known


def test_intel_rules_need_the_snapshot_and_honour_allowlists() -> None:
    rule = BUILTIN["intel-ip-connection"]
    compiled = StreamRules.compile([rule])
    assert compiled.needs_intel
    doc = _doc("3", destination__ip="203.0.113.66")
    assert compiled.match(doc, None) == []
    assert compiled.match(doc, FakeIntel(("intel", "destination.ip", "203.0.113.66"))) == [rule]
    assert compiled.match(doc, FakeIntel(("intel", "destination.ip", "203.0.113.67"))) == []
    allowed = replace(rule, exceptions=Exceptions(allowlists=(IntelClause(("destination.ip",)),)))
    both = FakeIntel(("intel", "destination.ip", "203.0.113.66"), ("allow", "destination.ip", "203.0.113.66"))
    assert StreamRules.compile([allowed]).match(doc, both) == []


def test_rules_that_need_history_or_unknown_constructs_stay_scheduled() -> None:
    odd = [_rule('message:"Image is replaced"'), _rule("cmd.exe"), _rule("process.name:cmd~1")]
    odd += [_rule(query={"match": {"process.name": "cmd.exe"}}), _rule("process.name:/a&b/")]
    compiled = StreamRules.compile([*BUILTIN.values(), *odd])
    why = compiled.unsupported
    assert why["new-binary-not-allowlisted"] == NEEDS_HISTORY and why["bad-hash-spread"] == NEEDS_HISTORY
    assert "text field" in why['r-message:"Image is replaced"']
    assert "every field" in why["r-cmd.exe"]
    assert "Fuzzy" in why["r-process.name:cmd~1"]
    assert "match" in why["r-{'match': {'process.name': 'cmd.exe'}}"]
    assert "operator '&'" in why["r-process.name:/a&b/"]
    assert "office-spawns-shell" in {r.id for r in compiled.supported}
    assert not compiled.needs_intel or any(r.type == "intel_match" for r in compiled.supported)


def test_the_prefilter_skips_rules_whose_literals_are_absent() -> None:
    rules = [_rule(f"process.command_line.caseless:*marker{i:03d}x*") for i in range(200)]
    compiled = StreamRules.compile(rules)
    doc = _doc(process__command_line="run MARKER017X now")
    assert compiled.candidates(doc) == [17]
    assert [r.id for r in compiled.match(doc, None)] == [rules[17].id]
    assert len(StreamRules.compile(rules, prefilter=False).candidates(doc)) == 200


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        # seen on Elasticsearch 9: case_insensitive folds single characters, in classes too, and
        # the Kelvin sign and long s with k and s; it never folds a range
        ("0x1[F]FFFF", "0x1fffff", True),
        ("0x1[^f]*", "0x1FFFFF", False),
        ("0x[0-9A-F]*", "0x1fffff", False),
        ("0x[0-9a-f]*[13579bdf][0-9a-f]", "0x1410", True),
        ("ks..", "\u212a\u017f\u0130\u0131", True),
        ("..ii", "\u212a\u017f\u0130\u0131", False),
    ],
)
def test_case_insensitive_regexp(pattern: str, value: str, expected: bool) -> None:
    rule = _rule(
        query={"regexp": {"winlog.event_data.GrantedAccess": {"value": pattern, "case_insensitive": True}}}
    )
    assert _matches(rule, _doc(winlog__event_data__GrantedAccess=value)) is expected


def test_lower_casing_is_java_s_per_code_point() -> None:
    # the normaliser lower-cases İ to i and a final sigma like any other
    assert _matches(_rule("process.executable.caseless:ix"), _doc(process__executable="\u0130X"))
    assert _matches(
        _rule("process.executable.caseless:\u03b1\u03c3"), _doc(process__executable="\u0391\u03a3")
    )
    assert not _matches(
        _rule("process.executable.caseless:\u03b1\u03c2"), _doc(process__executable="\u0391\u03a3")
    )


#: the leaf kinds an OR on one field can mix; the matcher merges them into one regex
SAME_FIELD_LEAVES = [
    "process.command_line.caseless:*\\ \\-r\\ *",  # wildcard, escapes
    'process.command_line.caseless:"plink.exe -r x"',  # phrase: one term
    "process.command_line.caseless:PLINK.EXE",  # term, normalised
    "process.command_line.caseless:/.*-[rl] [0-9]+/",  # regexp: whole term, never normalised
    "process.command_line.caseless:/.*-R [0-9]+/",  # upper case: never matches a normalised term
    "process.command_line.caseless:a?c*",
]
LINES = ["plink.exe -R x", "PLINK.EXE", "x -l 22", "x -L 22", "abc", "ABCD", "a\nc", "-r", "p -R 1"]


@pytest.mark.parametrize("line", LINES)
def test_an_or_on_one_field_answers_as_its_leaves_do(line: str) -> None:
    doc = _doc(process__command_line=line)
    each = [_matches(_rule(leaf), doc) for leaf in SAME_FIELD_LEAVES]
    assert _matches(_rule(" OR ".join(SAME_FIELD_LEAVES)), doc) is any(each)
    assert _matches(_rule("NOT (" + " OR ".join(SAME_FIELD_LEAVES) + ")"), doc) is not any(each)


def test_merged_leaves_keep_their_case_sensitivity() -> None:
    # a case-insensitive term and a case-sensitive one on the plain keyword field, OR-ed
    query = {"bool": {"should": [
        {"term": {"process.name": {"value": "cmd.exe", "case_insensitive": True}}},
        {"term": {"process.name": "PowerShell.exe"}},
        {"wildcard": {"process.name": {"value": "WSCRIPT*"}}},
    ]}}  # fmt: skip
    expected = {"CMD.EXE": True, "PowerShell.exe": True, "powershell.exe": False,
                "WSCRIPT.exe": True, "wscript.exe": False}  # fmt: skip
    for name, want in expected.items():
        assert _matches(_rule(query=query), _doc(process__name=name)) is want, name


def test_rules_on_a_field_and_its_caseless_twin_read_their_own_values() -> None:
    # one document, both rules: the per-document value cache must not share the normalised values
    plain = _rule("process.executable:*\\\\CMD.EXE")
    caseless = _rule("process.executable.caseless:*\\\\cmd.exe")
    compiled = StreamRules.compile([plain, caseless])
    assert compiled.match(_doc(process__executable="C:\\CMD.EXE"), None) == [plain, caseless]
    assert compiled.match(_doc(process__executable="C:\\cmd.exe"), None) == [caseless]


@pytest.mark.parametrize(
    ("lucene", "doc", "expected"),
    [
        # a dotted key stored flat, and objects inside arrays, are read as Elasticsearch reads them
        ("process.name:cmd.exe", {"event": {"code": "1"}, "process.name": "cmd.exe"}, True),
        (
            "process.name:cmd.exe",
            {"event": {"code": "1"}, "process": [{"name": "x"}, {"name": "cmd.exe"}]},
            True,
        ),
        ("process.name:cmd.exe", {"event.code": "1", "process": {"name": ["a", ["cmd.exe"]]}}, True),
        ("process.name:cmd.exe", {"event": {"code": "1"}, "process": {"name": None}}, False),
        # scalars as keyword text: numbers and booleans as JSON writes them
        ("process.name:12", {"event": {"code": "1"}, "process": {"name": 12}}, True),
        ("process.name:true", {"event": {"code": "1"}, "process": {"name": True}}, True),
        ("process.name:1.5", {"event": {"code": "1"}, "process": {"name": 1.5}}, True),
        # long fields coerce numeric text and truncate decimals
        ("process.pid:42", {"event": {"code": "1"}, "process": {"pid": "42.9"}}, True),
        ("process.pid:42", {"event": {"code": "1"}, "process": {"pid": 42.9}}, True),
        ("process.pid:42", {"event": {"code": "1"}, "process": {"pid": "x42"}}, False),
        ("process.pid:[40 TO 41.5]", {"event": {"code": "1"}, "process": {"pid": 41}}, True),
        ("process.pid:{40.5 TO 42}", {"event": {"code": "1"}, "process": {"pid": 41}}, True),
        ("process.pid:{41 TO 42}", {"event": {"code": "1"}, "process": {"pid": 41}}, False),
        ("_exists_:process.pid", {"event": {"code": "1"}, "process": {"pid": "abc"}}, False),
        # keyword ranges in UTF-8 order
        ("process.name:[a TO c]", {"event": {"code": "1"}, "process": {"name": "b\u00e9"}}, True),
        ("process.name:{a TO b}", {"event": {"code": "1"}, "process": {"name": "b"}}, False),
        # booleans read from text
        (
            "file.code_signature.signed:false",
            {"event": {"code": "7"}, "file": {"code_signature": {"signed": ""}}},
            True,
        ),
        (
            "file.code_signature.signed:true",
            {"event": {"code": "7"}, "file": {"code_signature": {"signed": "yes"}}},
            False,
        ),
        # dates: _exists_ is any value
        ("_exists_:@timestamp", {"event": {"code": "1"}, "@timestamp": "2024-01-01T00:00:00Z"}, True),
        # addresses: IPv6 with a zone, and text that is no address
        ("source.ip:fe80\\:\\:1", {"event": {"code": "3"}, "source": {"ip": "fe80::1%eth0"}}, True),
        (
            "source.ip:[10.0.0.0 TO 10.255.255.255]",
            {"event": {"code": "3"}, "source": {"ip": "010.0.0.1"}},
            False,
        ),
    ],
)
def test_values_are_read_as_elasticsearch_indexes_them(
    lucene: str, doc: dict[str, Any], expected: bool
) -> None:
    code = _code(doc)
    assert _matches(_rule(lucene, codes=(code,)), doc) is expected


def _code(doc: dict[str, Any]) -> str:
    return str(doc.get("event.code") or doc["event"]["code"])


def test_a_document_the_native_reader_refuses_is_answered_in_python() -> None:
    # nesting deeper than serde_json's limit (128): the shipper's JSON allows it
    deep: dict[str, Any] = {}
    cur = deep
    for _ in range(200):
        cur["x"] = {}
        cur = cur["x"]
    doc = {**_doc(process__name="cmd.exe"), "deep": deep}
    rule = _rule("process.name:cmd.exe")
    compiled = StreamRules.compile([rule])
    assert compiled.native_count == 1
    native = compiled._native
    assert native is not None
    with pytest.raises(ValueError, match="recursion limit"):
        native.match_json(orjson.dumps(doc))
    assert compiled.match(doc, None) == [rule]
    item = b'{"create":{}}\n' + orjson.dumps(doc)
    plain = b'{"create":{}}\n' + orjson.dumps(_doc(process__name="cmd.exe"))
    other = b'{"create":{}}\n' + orjson.dumps(_doc(process__name="x.exe"))
    docs = [doc, _doc(process__name="cmd.exe"), _doc(process__name="x.exe")]
    assert compiled.match_items([item, plain, other], docs, None) == [[rule], [rule], []]
    assert not compiled.match({**_doc("3", process__name="cmd.exe"), "deep": deep}, None)


def test_fields_read_are_what_the_rules_read_and_the_event_code() -> None:
    rule = _rule(
        "process.executable.caseless:*\\\\cmd.exe AND (_exists_:user.name OR process.parent.name:x)",
        exceptions=Exceptions(values=(ValueException("process.command_line.caseless", ("a",)),)),
    )
    compiled = StreamRules.compile([rule])
    read = compiled.fields_read({rule.id})
    assert read is not None
    assert set(read) == {
        "event.code",
        "process.executable",
        "user.name",
        "process.parent.name",
        "process.command_line",
    }
    doc = _doc(process__executable=EXE, user__name="bob", process__command_line="b", host__name="h")
    kept = {k: v for k, v in doc.items() if k in {p.split(".")[0] for p in read}}
    kept["process"] = {k: v for k, v in doc["process"].items() if f"process.{k}" in read}
    assert _matches(rule, doc) and _matches(rule, kept)  # the same answer on only those fields
    assert compiled.fields_read(set()) == frozenset({"event.code"})


def test_fields_read_are_unknown_for_a_rule_without_native_form() -> None:
    refs = (FieldRef("process.name", "process.parent.name"),)
    rule = replace(
        _rule("process.name:cmd.exe"), filter=Filter(("1",), lucene="process.name:cmd.exe", field_refs=refs)
    )
    compiled = StreamRules.compile([rule])
    assert compiled.fields_read({rule.id}) is None


def test_match_native_leaves_the_python_rules_out() -> None:
    native = _rule("process.name:cmd.exe")
    refs = (FieldRef("process.name", "process.parent.name"),)
    python = replace(native, id="by-ref", filter=Filter(("1",), lucene="process.name:cmd*", field_refs=refs))
    compiled = StreamRules.compile([native, python])
    doc = _doc(process__name="cmd.exe", process__parent__name="CMD.EXE")
    assert compiled.match(doc, None) == [native, python]
    assert compiled.native_ids() == {native.id}
    assert compiled.match_native(doc) == [native]
