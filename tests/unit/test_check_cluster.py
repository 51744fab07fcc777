"""shipper.es.check_cluster: each failure is one clear message naming the URL; versions compare
as numbers (a 10.x node is newer than 9.x, not older as the strings "10" < "9" would say)."""

from __future__ import annotations

import socket
from typing import Any, cast

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elastic_transport import ConnectionError as TransportConnectionError
from elasticsearch import AuthenticationException, Elasticsearch

from shipper.errors import ClusterError
from shipper.es import ClusterSettings, check_cluster, make_client, parse_version

URL = "https://es.example.test:9200"


def _meta(status: int) -> ApiResponseMeta:
    return ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders(),
        duration=0.0,
        node=NodeConfig("https", "es.example.test", 9200),
    )


class _Nodes:
    def __init__(self, answer: dict[str, Any] | BaseException) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    def info(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


class FakeClient:
    """Just enough of ``Elasticsearch`` for check_cluster: ``nodes.info``."""

    def __init__(self, answer: dict[str, Any] | BaseException) -> None:
        self.nodes = _Nodes(answer)


def _check(answer: dict[str, Any] | BaseException) -> str:
    return check_cluster(cast(Elasticsearch, FakeClient(answer)), URL)


def _versions(*versions: str) -> dict[str, Any]:
    return {"nodes": {f"node{i}": {"version": v} for i, v in enumerate(versions)}}


def test_unreachable_cluster_names_the_url() -> None:
    with pytest.raises(ClusterError) as err:
        _check(TransportConnectionError("Connection refused"))
    assert str(err.value).startswith(f"cannot connect to {URL}")
    assert "Connection refused" in str(err.value)


def test_unreachable_real_client_on_a_closed_port() -> None:
    with socket.socket() as s:  # a port nothing listens on (bound, never listened)
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        client = make_client(ClusterSettings(url=url, request_timeout=5), max_retries=0)
        with pytest.raises(ClusterError) as err:
            check_cluster(client, url)
    assert f"cannot connect to {url}" in str(err.value)


def test_wrong_credentials_is_a_401_message_naming_the_url() -> None:
    exc = AuthenticationException("security_exception", _meta(401), {"error": "unable to authenticate"})
    with pytest.raises(ClusterError) as err:
        _check(exc)
    msg = str(err.value)
    assert msg.startswith(URL) and "HTTP 401" in msg and "credentials" in msg
    assert "ES_API_KEY" in msg  # says what to check


@pytest.mark.parametrize("old", ["8.17.0", "7.10.2"])
def test_too_old_version_is_refused(old: str) -> None:
    with pytest.raises(ClusterError) as err:
        _check(_versions(old))
    msg = str(err.value)
    assert msg == f"{URL} runs Elasticsearch {old}; this tool needs 9.x or later"


def test_the_oldest_node_of_a_mixed_cluster_decides() -> None:
    # "10.0.0" < "8.19.0" < "9.5.4" as strings; as versions 8.19.0 is the oldest.
    with pytest.raises(ClusterError, match=r"runs Elasticsearch 8\.19\.0;"):
        _check(_versions("9.5.4", "10.0.0", "8.19.0"))


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        (("9.5.4",), "9.5.4"),
        (("10.0.0",), "10.0.0"),
        (("10.1.0", "9.5.4"), "9.5.4"),  # the string min would also say 10.1.0
        (("9.10.0", "9.9.1"), "9.9.1"),  # "9.10.0" < "9.9.1" as strings
        (("10.0.0-SNAPSHOT",), "10.0.0-SNAPSHOT"),
    ],
)
def test_nine_and_ten_are_accepted_and_the_oldest_is_reported(
    versions: tuple[str, ...], expected: str
) -> None:
    client = FakeClient(_versions(*versions))
    assert check_cluster(cast(Elasticsearch, client), URL) == expected
    assert client.nodes.calls == [{"node_id": "_local", "metric": "_none", "filter_path": "nodes.*.version"}]


def test_no_nodes_and_unreadable_versions() -> None:
    with pytest.raises(ClusterError, match=f"^{URL} reported no nodes$"):
        _check({"nodes": {}})
    with pytest.raises(ClusterError, match="unreadable version 'banana'"):
        _check(_versions("9.5.4", "banana"))


def test_parse_version() -> None:
    assert parse_version("9.5.4") == (9, 5, 4)
    assert parse_version("10") == (10, 0, 0)
    assert parse_version(" 10.2.1-SNAPSHOT ") == (10, 2, 1)
    assert parse_version("") is None
    assert parse_version("v9") is None
    assert parse_version("10.0.0") > parse_version("9.99.99")  # type: ignore[operator]
