"""``sysmon-detect hunt`` on hand-made events in a real node: composite paging over more buckets
than a page with the allowlist / intel look-ups done per page, a process tree with a broken and
a cut ancestry, children and a target event, and a hash whose lone early sighting must not hide
where the spread began (the same patient zero as the ``bad-hash-spread`` rule's alert)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner
from elasticsearch import Elasticsearch

from detectors.cli import main
from detectors.hunt.process import ProcessRequest, process_rows
from detectors.hunt.scope import Scope, parse_time
from detectors.hunt.sightings import HashRequest, first_sightings, sighting_rows
from detectors.hunt.stack import StackRequest, StackTotals, stack
from detectors.intel.indices import setup_intel
from detectors.intel.loader import feed_from_location, load_feed
from shipper.es import ClusterSettings
from tests.integration.test_detect_support import (
    alerts,
    builtin_rules,
    cli_env,
    index_docs,
    make_engine,
    proc_event,
)

HASHES = [f"{i:02x}" * 32 for i in range(25)]


def _load(es: Elasticsearch, prefix: str, tmp: Path, name: str, kind: str, values: list[str]) -> None:
    setup_intel(es, prefix)
    f = tmp / f"{name}.txt"
    f.write_text("".join(v + "\n" for v in values))
    res = load_feed(es, feed_from_location(str(f), name=name, kind=kind), prefix=prefix, cache_dir=tmp / name)  # type: ignore[arg-type]
    assert res.status == "loaded", res
    es.indices.refresh(index=f"{prefix}-intel-*")


class _Counting:
    """Counts the searches a client (and the clients its ``options`` return) sends."""

    def __init__(self, es: Any, counter: list[int]) -> None:
        self._es, self._counter = es, counter

    def options(self, **kw: Any) -> _Counting:
        return _Counting(self._es.options(**kw), self._counter)

    def search(self, **kw: Any) -> Any:
        self._counter[0] += 1
        return self._es.search(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._es, name)


def test_stack_pages_past_one_page_and_looks_up_per_page(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    docs = []
    for i, h in enumerate(HASHES):
        for n in range(i % 4 + 1):  # 1..4 events per hash, on as many hosts
            docs.append(
                proc_event(
                    f"H{n}",
                    f"2026-05-01T10:{i:02d}:{n:02d}.000Z",
                    f"{{P-{i}-{n}}}",
                    None,
                    f"C:\\bin\\tool{i}.exe",
                    extra={"process.hash.sha256": h},
                )
            )
    index_docs(es, prefix, docs)
    _load(es, prefix, tmp_path, "known-good", "allow", HASHES[:10])
    _load(es, prefix, tmp_path, "bad", "intel", HASHES[20:])
    calls = [0]
    totals = StackTotals()
    req = StackRequest(fields=("process.hash.sha256",), page_size=7, order="value")
    progress: list[int] = []
    rows = list(stack(_Counting(es, calls), prefix, req, totals, progress.append))  # type: ignore[arg-type]
    assert progress == [7, 14, 21, 25]
    assert [r.values[0] for r in rows] == sorted(HASHES)
    for r in rows:
        i = HASHES.index(r.values[0])
        assert (r.count, r.hosts) == (i % 4 + 1, i % 4 + 1)
        assert r.first_seen == f"2026-05-01T10:{i:02d}:00.000Z"
        assert r.last_seen == f"2026-05-01T10:{i:02d}:{i % 4:02d}.000Z"
        assert r.known == (i < 10) and r.allow == (("known-good",) if i < 10 else ())
        assert r.intel == (("bad",) if i >= 20 else ())
    assert (totals.buckets, totals.events, totals.known, totals.intel) == (25, len(docs), 10, 5)
    pages = 4  # 7 + 7 + 7 + 4 buckets
    # per page: the composite, then per kind the manifests and one indicator query; not per value
    assert calls[0] <= 1 + pages * 5 < 2 * len(HASHES)

    unknown = list(
        stack(
            es,
            prefix,
            StackRequest(
                fields=("process.hash.sha256",), unknown_only=True, order="rare", limit=5, page_size=7
            ),
            StackTotals(),
        )
    )
    assert [r.count for r in unknown] == [1, 1, 1, 1, 2]
    assert all(HASHES.index(r.values[0]) >= 10 for r in unknown)


def test_stack_by_two_fields_and_scope(es: Elasticsearch, prefix: str) -> None:
    docs = [
        proc_event(
            "A",
            "2026-05-01T10:00:00.000Z",
            "{1}",
            None,
            "C:\\x\\a.exe",
            extra={"process.hash.sha256": "aa" * 32},
        ),
        proc_event(
            "A",
            "2026-05-02T10:00:00.000Z",
            "{2}",
            None,
            "C:\\x\\a.exe",
            extra={"process.hash.sha256": "bb" * 32},
        ),
        proc_event(
            "B",
            "2026-05-03T10:00:00.000Z",
            "{3}",
            None,
            "C:\\y\\a.exe",
            extra={"process.hash.sha256": "aa" * 32},
        ),
        proc_event("B", "2026-05-03T11:00:00.000Z", "{3}", None, "C:\\y\\a.exe", code="3"),
    ]
    index_docs(es, prefix, docs)
    rows = list(stack(es, prefix, StackRequest(order="value"), StackTotals()))
    assert [(r.values, r.count) for r in rows] == [
        (("C:\\x\\a.exe", "aa" * 32), 1),
        (("C:\\x\\a.exe", "bb" * 32), 1),
        (("C:\\y\\a.exe", "aa" * 32), 1),
    ]
    scoped = Scope(hosts=("A",), since=parse_time("2026-05-02"), until=parse_time("2026-05-04"))
    rows = list(stack(es, prefix, StackRequest(scope=scoped), StackTotals()))
    assert [r.values for r in rows] == [("C:\\x\\a.exe", "bb" * 32)]
    rows = list(
        stack(es, prefix, StackRequest(fields=("host.name",), scope=Scope(event_codes=("3",))), StackTotals())
    )
    assert [(r.values, r.count) for r in rows] == [(("B",), 1)]


def _tree(es: Elasticsearch, prefix: str) -> None:
    h = "WS1"
    docs = [
        proc_event(h, "2026-05-01T08:00:00.000Z", "{A}", "{ROOT}", "C:\\w\\explorer.exe", pid=1),
        proc_event(h, "2026-05-01T08:01:00.000Z", "{B}", "{A}", "C:\\w\\cmd.exe", pid=2),
        proc_event(h, "2026-05-01T08:02:00.000Z", "{C}", "{B}", "C:\\t\\evil.exe", pid=3),
        # the subject's own events, indexed out of time order
        proc_event(
            h,
            "2026-05-01T08:09:00.000Z",
            "{C}",
            None,
            "C:\\t\\evil.exe",
            pid=3,
            code="13",
            extra={"registry.path": "HKLM\\Run\\evil", "registry.data.strings": ["C:\\t\\evil.exe"]},
        ),
        proc_event(
            h,
            "2026-05-01T08:03:00.000Z",
            "{C}",
            None,
            "C:\\t\\evil.exe",
            pid=3,
            code="22",
            extra={"dns.question.name": "c2.example", "dns.resolved_ip": ["203.0.113.9"]},
        ),
        proc_event(
            h,
            "2026-05-01T08:04:00.000Z",
            "{C}",
            None,
            "C:\\t\\evil.exe",
            pid=3,
            code="3",
            extra={"destination.ip": "203.0.113.9", "destination.port": 443, "network.transport": "tcp"},
        ),
        proc_event(
            h,
            "2026-05-01T08:05:00.000Z",
            "{C}",
            None,
            "C:\\t\\evil.exe",
            pid=3,
            code="11",
            extra={"file.path": "C:\\t\\drop.dll"},
        ),
        # children
        proc_event(h, "2026-05-01T08:06:00.000Z", "{D}", "{C}", "C:\\w\\whoami.exe", pid=4),
        proc_event(h, "2026-05-01T08:07:00.000Z", "{E}", "{C}", "C:\\w\\net.exe", pid=5),
        # someone opens the subject (event 10: the target stays in event data)
        proc_event(
            h,
            "2026-05-01T08:08:00.000Z",
            "{X}",
            None,
            "C:\\w\\procexp.exe",
            pid=6,
            code="10",
            extra={
                "winlog.event_data.TargetProcessGUID": "{C}",
                "winlog.event_data.TargetImage": "C:\\t\\evil.exe",
                "winlog.event_data.GrantedAccess": "0x1410",
            },
        ),
        # a grandchild's event must not appear
        proc_event(
            h,
            "2026-05-01T08:10:00.000Z",
            "{D}",
            None,
            "C:\\w\\whoami.exe",
            pid=4,
            code="3",
            extra={"destination.ip": "10.0.0.1"},
        ),
        # the same GUID on another host is another process
        proc_event("WS2", "2026-05-01T08:02:30.000Z", "{C}", None, "C:\\other.exe", pid=9, code="11"),
    ]
    index_docs(es, prefix, docs)


def test_process_timeline(es: Elasticsearch, prefix: str) -> None:
    _tree(es, prefix)
    rows = list(process_rows(es, prefix, ProcessRequest("{C}", Scope(hosts=("WS1",)))))
    got = [(r["relation"], r.get("entity_id"), r.get("event_code")) for r in rows]
    assert got == [
        ("missing", "{ROOT}", None),
        ("ancestor", "{A}", "1"),
        ("ancestor", "{B}", "1"),
        ("process", "{C}", "1"),
        ("self", "{C}", "22"),
        ("self", "{C}", "3"),
        ("self", "{C}", "11"),
        ("child", "{D}", "1"),
        ("child", "{E}", "1"),
        ("target", "{X}", "10"),
        ("self", "{C}", "13"),
    ]
    assert [r["depth"] for r in rows[:4]] == [-3, -2, -1, 0]
    assert rows[4]["detail"] == "c2.example → 203.0.113.9"
    assert rows[9]["detail"] == "→ C:\\t\\evil.exe access=0x1410"

    cut = list(
        process_rows(es, prefix, ProcessRequest("{C}", Scope(hosts=("WS1",), event_codes=("3",)), depth=2))
    )
    assert [(r["relation"], r.get("entity_id")) for r in cut] == [
        ("truncated", None),
        ("ancestor", "{B}"),
        ("process", "{C}"),
        ("self", "{C}"),
    ]
    limited = list(process_rows(es, prefix, ProcessRequest("{C}", Scope(hosts=("WS1",)), limit=2)))
    assert [r["relation"] for r in limited] == ["missing", "ancestor", "ancestor", "process", "self", "self"]


def test_process_cli_needs_a_host_when_the_id_is_on_several(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str
) -> None:
    _tree(es, prefix)
    env = cli_env(es_settings, prefix)
    r = CliRunner().invoke(main, ["hunt", "process", "{C}"], env=env)
    assert r.exit_code == 1
    assert "process {C} appears on 2 hosts (WS1, WS2): choose one with --host" in r.output
    r = CliRunner().invoke(main, ["hunt", "process", "{C}", "--host", "WS2", "--format", "csv"], env=env)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("time,host,relation,depth,event_code")
    assert [line.split(",")[2] for line in lines[1:]] == ["missing", "self"]
    assert "summary: rows=2 ancestor=0 self=1 child=0 target=0 broken=yes" in r.stderr


def test_hash_patient_zero_matches_the_spread_rule(
    es: Elasticsearch, es_settings: ClusterSettings, prefix: str, tmp_path: Path
) -> None:
    bad = "ef" * 32
    sha = {"process.hash.sha256": bad}
    docs = [
        # a lone sighting 30 days before the spread
        proc_event("LONE", "2026-04-01T09:00:00.000Z", "{L}", None, "C:\\t\\x.exe", extra=sha),
        proc_event("S2", "2026-05-01T10:20:00.000Z", "{S2}", None, "C:\\t\\x.exe", extra=sha),
        proc_event("S1", "2026-05-01T10:00:00.000Z", "{S1}", None, "C:\\t\\x.exe", extra=sha),
        proc_event("S1", "2026-05-01T12:00:00.000Z", "{S1b}", None, "C:\\t\\x.exe", extra=sha),
        proc_event("S3", "2026-05-01T11:00:00.000Z", "{S3}", None, "C:\\t\\x.exe", extra=sha),
        # a module load of the same file, found by file.hash and related.hash alone
        proc_event(
            "S3",
            "2026-05-01T11:30:00.000Z",
            "{Y}",
            None,
            "C:\\w\\y.exe",
            code="7",
            extra={"file.path": "C:\\t\\x.exe", "file.hash.sha256": bad},
        ),
        proc_event(
            "S2",
            "2026-05-01T11:40:00.000Z",
            "{Z}",
            None,
            "C:\\w\\z.exe",
            code="7",
            extra={"related.hash": [bad]},
        ),
        proc_event(
            "S1",
            "2026-05-01T10:00:00.000Z",
            "{N}",
            None,
            "C:\\t\\n.exe",
            extra={"process.hash.sha256": "00" * 32},
        ),
    ]
    index_docs(es, prefix, docs)
    _load(es, prefix, tmp_path, "bad", "intel", [bad])
    engine = make_engine(es, prefix, [r for r in builtin_rules() if r.id == "bad-hash-spread"])
    assert [r.status for r in engine.run(only_due=False)] == ["ok"]
    (alert,) = alerts(es, prefix, "bad-hash-spread")

    req = HashRequest(bad.upper(), window=7 * 86400, min_hosts=2)
    spread = first_sightings(es, prefix, req)
    assert spread.patient_zero is not None
    assert spread.patient_zero["name"] == alert["alert"]["spread"]["patient_zero"] == "S1"
    assert [h["name"] for h in spread.hosts] == ["LONE", "S1", "S2", "S3"]
    assert (spread.spread, spread.spread_hosts) == (True, 3)
    rows = list(sighting_rows(es, prefix, req, spread))
    assert [(r["host"], r["event_code"]) for r in rows] == [
        ("LONE", "1"),
        ("S1", "1"),
        ("S2", "1"),
        ("S3", "1"),
        ("S3", "7"),
        ("S2", "7"),
        ("S1", "1"),
    ]
    assert [r["relation"] for r in rows] == [
        "first on host",
        "PATIENT ZERO",
        "first on host",
        "first on host",
        "",
        "",
        "",
    ]
    limited = list(
        sighting_rows(es, prefix, HashRequest(bad, limit=2), first_sightings(es, prefix, HashRequest(bad)))
    )
    assert [r["patient_zero"] for r in limited] == [False, True]

    r = CliRunner().invoke(
        main, ["hunt", "hash", bad, "--first", "--format", "json"], env=cli_env(es_settings, prefix)
    )
    assert r.exit_code == 0, r.output
    assert "summary: sightings=7 hosts=4 patient_zero=S1 " in r.stderr
    r = CliRunner().invoke(
        main, ["hunt", "hash", bad, "--min-hosts", "4", "--format", "json"], env=cli_env(es_settings, prefix)
    )
    assert "patient_zero=LONE " in r.stderr and "spread=no hosts_in_window=1" in r.stderr


def test_stack_known_needs_every_field_an_allowlist_covers(
    es: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    good, other = "a1" * 32, "b2" * 32
    docs = [
        proc_event(
            "A",
            "2026-05-01T10:00:00.000Z",
            "{1}",
            None,
            "C:\\w\\good.exe",
            extra={"process.hash.sha256": good},
        ),
        # a listed path with an unlisted hash: a replaced binary
        proc_event(
            "A",
            "2026-05-01T10:01:00.000Z",
            "{2}",
            None,
            "C:\\w\\good.exe",
            extra={"process.hash.sha256": other},
        ),
        # a listed hash copied elsewhere
        proc_event(
            "A",
            "2026-05-01T10:02:00.000Z",
            "{3}",
            None,
            "C:\\t\\copy.exe",
            extra={"process.hash.sha256": good},
        ),
    ]
    index_docs(es, prefix, docs)
    _load(es, prefix, tmp_path, "hashes", "allow", [good])
    req = StackRequest(order="value")
    known = {r.values: r.known for r in stack(es, prefix, req, StackTotals())}
    # only a hash allowlist: the hash decides
    assert known == {
        ("C:\\t\\copy.exe", good): True,
        ("C:\\w\\good.exe", good): True,
        ("C:\\w\\good.exe", other): False,
    }
    _load(es, prefix, tmp_path, "paths", "allow", ["C:\\W\\GOOD.EXE"])  # image paths match in any case
    rows = list(stack(es, prefix, req, StackTotals()))
    assert {r.values: (r.known, r.allow) for r in rows} == {
        ("C:\\t\\copy.exe", good): (False, ("hashes",)),
        ("C:\\w\\good.exe", good): (True, ("hashes", "paths")),
        ("C:\\w\\good.exe", other): (False, ("paths",)),
    }
    unknown = list(stack(es, prefix, StackRequest(unknown_only=True), StackTotals()))
    assert {r.values for r in unknown} == {("C:\\t\\copy.exe", good), ("C:\\w\\good.exe", other)}
