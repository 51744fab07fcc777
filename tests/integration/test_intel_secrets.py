# ruff: noqa: F811  (the feed_server and env fixtures are imported from test_intel_cli_more)
"""A feed key given in the URL's query string is used for the request but never printed or
stored: not in load output, errors, `intel list`, nor the feeds index."""

from __future__ import annotations

import json

from elasticsearch import Elasticsearch

from tests.integration.test_intel_cli_more import (  # noqa: F401 (fixtures)
    Routes,
    _run,
    env,
    feed_server,
)

SECRET = "s3cr3t-KEY-0123456789"


def test_a_query_string_key_is_masked_in_output_and_indices(
    es: Elasticsearch, prefix: str, env: dict[str, str], feed_server: tuple[str, Routes]
) -> None:
    url, served = feed_server
    served.routes[f"/ips.txt?apikey={SECRET}&list=full"] = (200, b"192.0.2.77\n")
    ok = _run(env, "load", "--url", f"{url}/ips.txt?apikey={SECRET}&list=full", "--name", "keyed")
    assert ok.exit_code == 0, ok.output
    assert served.requests == [f"/ips.txt?apikey={SECRET}&list=full"]  # the key was sent
    assert SECRET not in ok.output

    served.routes.clear()  # now a 404 naming the URL in its error
    failed = _run(env, "load", "--url", f"{url}/ips.txt?apikey={SECRET}&list=full", "--name", "keyed")
    assert failed.exit_code == 1 and "HTTP 404" in failed.output
    assert "apikey=****" in failed.output and SECRET not in failed.output

    listed = _run(env, "list")
    assert "keyed" in listed.output and SECRET not in listed.output
    es.indices.refresh(index=f"{prefix}-intel-feeds")
    manifest = es.get(index=f"{prefix}-intel-feeds", id="keyed")["_source"]
    assert SECRET not in json.dumps(manifest)
    assert manifest["source"]["location"] == f"{url}/ips.txt?apikey=****&list=full"
    assert manifest["last_error"].endswith(f"from {url}/ips.txt?apikey=****&list=full")
    indicators = es.search(index=f"{prefix}-intel-indicators", query={"term": {"intel.feed": "keyed"}})
    assert SECRET not in json.dumps(indicators["hits"]["hits"])
