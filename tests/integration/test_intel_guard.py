# ruff: noqa: F811  (the feed_server and env fixtures are imported from test_intel_cli_more)
"""The coverage guard on the real node: a load that would silently shrink a feed is refused,
the previous generation keeps detecting, and --force / min_ratio accept it on purpose."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from detectors.intel.indices import indicators_index, lookup_index
from tests.integration.test_intel_cli_more import (  # noqa: F401 (fixtures)
    Routes,
    _listing,
    _run,
    env,
    feed_server,
)

HTML_ERROR = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n"
    b"<body><h1>Service Unavailable</h1>\n<p>The feed is down for maintenance.</p>\n"
    b"</body></html>\n"
)


def _ips(n: int, third: int = 0) -> bytes:
    return "".join(f"198.51.{third}.{i}\n" for i in range(1, n + 1)).encode()


def _lookup_values(es: Elasticsearch, prefix: str, feed: str) -> set[str]:
    """The values the detectors' terms lookups read: the chunks the manifest lists."""
    es.indices.refresh(index=lookup_index(prefix))
    state = es.get(index=f"{prefix}-intel-feeds", id=feed)["_source"]
    values: set[str] = set()
    for ids in state["chunks"].values():
        for cid in ids:
            values.update(es.get(index=lookup_index(prefix), id=cid)["_source"]["values"])
    return values


def _refused(result_output: str, feed: str) -> None:
    assert f"{feed}: FAILED: refused: " in result_output, result_output
    assert "(--force accepts it)" in result_output


def test_shrinking_loads_are_refused_and_the_old_list_keeps_detecting(
    es: Elasticsearch,
    prefix: str,
    env: dict[str, str],
    feed_server: tuple[str, Routes],
) -> None:
    url, served = feed_server
    good = {f"198.51.0.{i}" for i in range(1, 201)}
    served.routes["/ips.txt"] = (200, _ips(200))
    first = _run(env, "load", "--url", f"{url}/ips.txt", "--name", "ips")
    assert first.exit_code == 0 and "loaded generation 1: ip 200" in first.output, first.output

    # a 200 answer that is an HTML error page
    served.routes["/ips.txt"] = (200, HTML_ERROR)
    html = _run(env, "load", "--url", f"{url}/ips.txt", "--name", "ips")
    assert html.exit_code == 1
    _refused(html.output, "ips")
    assert "the feed yielded no indicators" in html.output and "generation 1 stays" in html.output

    # 13,530 bad lines and 100 good ones
    junk = b"".join(b"<div class=row>%d not an indicator</div>\n" % i for i in range(13_530))
    served.routes["/ips.txt"] = (200, junk + _ips(100))
    mostly_bad = _run(env, "load", "--url", f"{url}/ips.txt", "--name", "ips")
    assert mostly_bad.exit_code == 1
    _refused(mostly_bad.output, "ips")
    assert "13530 of 13630 records are invalid" in mostly_bad.output

    # a tenth of a tenth: 15 of 200
    served.routes["/ips.txt"] = (200, _ips(15, third=9))
    small = _run(env, "load", "--url", f"{url}/ips.txt", "--name", "ips")
    assert small.exit_code == 1
    _refused(small.output, "ips")
    assert "15 indicators, fewer than 10% of the last good generation's 200" in small.output

    # through all of it generation 1 stays, listed with the error, and still detects
    listed = _listing(_run(env, "list").output)["ips"]
    assert listed["generation"] == "1" and listed["status"] == "failed"
    assert listed["counts"] == "ip 200"
    assert listed["last_error"].startswith("refused: 15 indicators, fewer than 10%")
    assert _lookup_values(es, prefix, "ips") == good
    es.indices.refresh(index=indicators_index(prefix))  # whatever a refused load wrote is searchable
    assert _run(env, "check", "198.51.0.7").exit_code == 0
    assert _run(env, "check", "198.51.9.7").exit_code != 0  # the refused list never went live
    # the refused loads' chunks are gone: only generation 1's remain
    es.indices.refresh(index=lookup_index(prefix))
    hits = es.search(index=lookup_index(prefix), query={"term": {"feed": "ips"}}, size=100)["hits"]["hits"]
    chunk_gens = {h["_source"]["generation"] for h in hits}
    assert chunk_gens == {1}

    # --force accepts the small list: a new generation, past the numbers the refused loads used
    forced = _run(env, "load", "--url", f"{url}/ips.txt", "--name", "ips", "--force")
    assert forced.exit_code == 0, forced.output
    assert "ips: loaded generation 5: ip 15" in forced.output
    assert _lookup_values(es, prefix, "ips") == {f"198.51.9.{i}" for i in range(1, 16)}
    assert _run(env, "check", "198.51.0.7").exit_code != 0
    # and no indicator document a refused load rewrote outlives the good load's cleanup
    es.indices.refresh(index=indicators_index(prefix))
    left = es.count(index=indicators_index(prefix), query={"term": {"intel.feed": "ips"}})["count"]
    assert left == 15


def test_min_ratio_zero_turns_the_size_check_off(
    es: Elasticsearch,
    prefix: str,
    env: dict[str, str],
    feed_server: tuple[str, Routes],
) -> None:
    url, served = feed_server
    served.routes["/a.txt"] = (200, _ips(100))
    assert _run(env, "load", "--url", f"{url}/a.txt", "--name", "a").exit_code == 0
    served.routes["/a.txt"] = (200, _ips(3))
    assert _run(env, "load", "--url", f"{url}/a.txt", "--name", "a").exit_code == 1
    ok = _run(env, "load", "--url", f"{url}/a.txt", "--name", "a", "--min-ratio", "0")
    assert ok.exit_code == 0 and "a: loaded generation 3: ip 3" in ok.output, ok.output
    # an empty answer is refused whatever the ratio
    served.routes["/a.txt"] = (200, b"")
    empty = _run(env, "load", "--url", f"{url}/a.txt", "--name", "a", "--min-ratio", "0")
    assert empty.exit_code == 1 and "the feed yielded no indicators" in empty.output
