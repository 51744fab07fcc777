"""The sample-day generator: determinism, counts, ordering, ancestry, attack chain, clean background."""

from __future__ import annotations

import inspect
import ipaddress
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from samples import catalog as C
from samples.day import (
    CATEGORIES,
    PRELOG_IMAGES,
    T_ATTACK,
    attack_hosts,
    generate,
    host_names,
    minimum_events,
)
from samples.model import FIELDS, SysmonEvent


def _events(n: int, seed: int = 1, hosts: int = 6) -> list[SysmonEvent]:
    return list(generate(n, seed, hosts=hosts))


def _key(ev: SysmonEvent) -> tuple[object, ...]:
    return (ev.host, ev.record_id, ev.event_id, ev.time_created, tuple(ev.data.items()), ev.thread_id)


def _sha256(ev: SysmonEvent) -> str | None:
    hashes = ev.data.get("Hashes")
    if not hashes:
        return None
    return dict(p.split("=", 1) for p in hashes.split(","))["SHA256"].lower()


ALLOW = {b.sha256.lower() for b in C.ALL_BENIGN}
BAD_NET = ipaddress.ip_network(C.BAD_CIDR)


def _is_bad_ip(ip: str) -> bool:
    return ip == C.BAD_IP or ipaddress.ip_address(ip) in BAD_NET


def test_generate_is_a_lazy_generator() -> None:
    stream = generate(1000, 1)
    assert inspect.isgenerator(stream)
    first = next(stream)
    assert isinstance(first, SysmonEvent)
    stream.close()


def test_same_seed_same_events_and_different_seeds_differ() -> None:
    a = [_key(e) for e in _events(800, seed=7)]
    b = [_key(e) for e in _events(800, seed=7)]
    c = [_key(e) for e in _events(800, seed=8)]
    assert a == b
    assert a != c


@pytest.mark.parametrize("n", [minimum_events(), 300, 1000, 5000])
def test_exact_count_time_order_and_record_ids(n: int) -> None:
    evs = _events(n)
    assert len(evs) == n
    times = [e.time_created for e in evs]
    assert times == sorted(times)
    last: dict[str, int] = {}
    for e in evs:
        assert e.record_id > last.get(e.host, 0)
        last[e.host] = e.record_id
        assert tuple(e.data) == FIELDS[e.event_id]
    assert set(last) <= set(host_names(6))


def test_too_few_events_or_hosts_is_an_error() -> None:
    with pytest.raises(ValueError):
        generate(minimum_events() - 1, 1)
    with pytest.raises(ValueError):
        generate(1000, 1, hosts=1)


def test_day_spans_24_hours_from_start() -> None:
    start = datetime(2027, 3, 1, tzinfo=UTC)
    evs = list(generate(3000, 2, start=start))
    first = evs[0].data["UtcTime"]
    last = evs[-1].data["UtcTime"]
    assert first.startswith("2027-03-01 0")
    assert last.startswith("2027-03-01 2")


@pytest.mark.parametrize(("n", "hosts"), [(400, 6), (5000, 6), (300, 2), (2000, 4)])
def test_ancestry_is_consistent(n: int, hosts: int) -> None:
    started: dict[str, dict[str, int]] = defaultdict(dict)  # host → guid → index of its event 1
    ended: dict[str, set[str]] = defaultdict(set)
    prelog: dict[str, dict[str, str]] = defaultdict(dict)  # host → guid → image (seen, not started)
    for i, e in enumerate(generate(n, 3, hosts=hosts)):
        d = e.data
        if e.event_id == 1:
            parent = d["ParentProcessGuid"]
            if parent not in started[e.host]:
                assert d["ParentImage"] in PRELOG_IMAGES, d
                prelog[e.host][parent] = d["ParentImage"]
            assert parent not in ended[e.host]
            assert d["ProcessGuid"] not in started[e.host]
            started[e.host][d["ProcessGuid"]] = i
        guids = [d[k] for k in ("ProcessGuid", "SourceProcessGuid", "SourceProcessGUID") if k in d]
        for g in guids:
            assert g not in ended[e.host], f"event after termination: {d}"
            if g not in started[e.host]:
                image = d.get("Image") or d.get("SourceImage")
                assert image in PRELOG_IMAGES, d
        if e.event_id == 5:
            ended[e.host].add(d["ProcessGuid"])


@pytest.mark.parametrize(("n", "hosts"), [(minimum_events(), 6), (300, 6), (2000, 3), (20_000, 6), (300, 2)])
def test_attack_chain_present_at_every_size(n: int, hosts: int) -> None:
    pz, targets = attack_hosts(hosts)
    tagged = [e for e in generate(n, 5, hosts=hosts) if e.tags]
    cats = {t for e in tagged for t in e.tags}
    assert cats == {T_ATTACK, *CATEGORIES}
    spread = [e for e in tagged if "spread" in e.tags]
    assert [e.host for e in spread] == [pz, *targets]
    assert all(_sha256(e) == C.DROPPER.sha256.lower() for e in spread)
    assert [e.time_created for e in spread] == sorted(e.time_created for e in spread)


def test_background_is_clean() -> None:
    office = {C.OFFICE + n for n in ("WINWORD.EXE", "EXCEL.EXE", "POWERPNT.EXE", "OUTLOOK.EXE")}
    shells = {C.S32 + "cmd.exe", C.S32 + "WindowsPowerShell\\v1.0\\powershell.exe"}
    bad_names = {C.BAD_C2_DOMAIN, C.BAD_DOWNLOAD_DOMAIN}
    n_background = 0
    for e in generate(30_000, 11):
        if e.tags:
            continue
        n_background += 1
        d = e.data
        assert e.event_id not in (8, 9, 25)
        if e.event_id in (1, 6, 7):
            assert _sha256(e) in ALLOW, d
        if e.event_id in (6, 7):
            assert d["Signed"] == "true" and d["SignatureStatus"] == "Valid"
        if e.event_id == 1:
            assert not (d["ParentImage"] in office and d["Image"] in shells)
        if e.event_id == 3:
            assert not _is_bad_ip(d["DestinationIp"])
        if e.event_id == 22:
            assert d["QueryName"] not in bad_names and not d["QueryName"].endswith(C.BAD_REGISTERED_DOMAIN)
            assert C.BAD_IP not in d["QueryResults"] and "198.51.100." not in d["QueryResults"]
        if e.event_id == 10 and d["TargetImage"].lower().endswith("lsass.exe"):
            assert d["GrantedAccess"] == "0x1000"
            assert d["SourceImage"] in PRELOG_IMAGES
    assert n_background > 29_000


def test_event_mix_is_realistic() -> None:
    counts: dict[int, int] = defaultdict(int)
    for e in generate(20_000, 4):
        counts[e.event_id] += 1
    for eid in (1, 3, 5, 7, 10, 11, 12, 13, 17, 18, 22):
        assert counts[eid] > 50, (eid, counts)
    assert counts[6] >= 2
    assert sum(counts.values()) == 20_000
