"""A real Elasticsearch node for integration tests and the fault suite.

``ES_URL`` set: tests use that cluster. Otherwise the session starts its own node with
``devtools.es`` (fetched with Maven on first use) and stops it at the end. A test that cannot get
a node fails — it never skips (set ``SYSMON_SKIP_INTEGRATION=1`` outside CI to skip on purpose).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from devtools import es as devnode
from shipper.es import ClusterSettings, check_cluster, make_client

_STARTED: list[str] = []

# Least-privilege roles for the security tests (file realm; see docs/architecture.md).
SECURE_ROLES = """
sysmon_shipper:
  cluster: ["monitor", "manage_index_templates"]
  indices:
    - names: ["sec-*"]
      privileges: ["create_doc", "create_index", "view_index_metadata", "auto_configure"]
sysmon_reader:
  cluster: ["monitor"]
  indices:
    - names: ["sec-*"]
      privileges: ["read", "view_index_metadata"]
sysmon_writer:
  cluster: ["monitor"]
  indices:
    - names: ["sec-*-events-*"]
      privileges: ["create_doc", "create_index", "auto_configure"]
"""
SECURE_USERS = {
    "shipper": ("shipper-pass-1234", ["sysmon_shipper"]),
    "reader": ("reader-pass-1234", ["sysmon_reader"]),
    # ships only: no template management, writes only new documents into event indices
    "writer": ("writer-pass-5678", ["sysmon_writer"]),
}


_HERE = os.path.dirname(__file__)
_INTEGRATION = os.path.join(_HERE, "integration") + os.sep
_FAULTS = os.path.join(_HERE, "faults") + os.sep
# Every probe in tests/faults/ is bounded in time, whatever it waits on.
FAULT_TIMEOUT_S = 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if path.startswith(_INTEGRATION):
            item.add_marker(pytest.mark.integration)
        elif path.startswith(_FAULTS):
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.faults)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(FAULT_TIMEOUT_S))


@pytest.fixture(scope="session")
def es_settings() -> Iterator[ClusterSettings]:
    """Cluster settings for the real node every integration test uses."""
    if os.environ.get("SYSMON_SKIP_INTEGRATION") and os.environ.get("CI", "").lower() != "true":
        pytest.skip("SYSMON_SKIP_INTEGRATION is set (never honoured in CI)")
    if os.environ.get("ES_URL"):
        yield ClusterSettings.from_env()
        return
    name = f"pytest-{os.getpid()}"
    try:
        info = devnode.start(name=name, fresh=True)
    except devnode.NodeError as exc:
        pytest.fail(f"could not start the local Elasticsearch node: {exc}", pytrace=False)
    _STARTED.append(f"Elasticsearch {info.version} node at {info.url} started in {info.started_in}s")
    try:
        yield ClusterSettings.from_env(info.env())
    finally:
        devnode.stop(name, remove=True)


@pytest.fixture(scope="session")
def es(es_settings: ClusterSettings) -> Elasticsearch:
    client = make_client(es_settings)
    check_cluster(client, es_settings.url)
    return client


@pytest.fixture
def prefix(es: Elasticsearch) -> Iterator[str]:
    """A fresh index prefix per test, so tests never see each other's data; cleaned up after."""
    p = f"t{uuid.uuid4().hex[:10]}"
    yield p
    names = list(es.options(ignore_status=404).indices.get(index=f"{p}-*", expand_wildcards="all"))
    for i in range(0, len(names), 50):
        es.options(ignore_status=404).indices.delete(index=",".join(names[i : i + 50]))
    for tpl in (
        es.options(ignore_status=404).indices.get_index_template(name=f"{p}-*").get("index_templates", [])
    ):
        es.indices.delete_index_template(name=tpl["name"])
    comps = es.options(ignore_status=404).cluster.get_component_template(name=f"{p}-*")
    for tpl in comps.get("component_templates", []):
        es.cluster.delete_component_template(name=tpl["name"])


@pytest.fixture(scope="session")
def es_secure() -> Iterator[devnode.NodeInfo]:
    """A second node with security on: TLS with a generated CA, a password for ``elastic``, and
    file-realm users ``shipper`` and ``reader`` with least-privilege roles on ``sec-*``."""
    if os.environ.get("SYSMON_SKIP_INTEGRATION") and os.environ.get("CI", "").lower() != "true":
        pytest.skip("SYSMON_SKIP_INTEGRATION is set (never honoured in CI)")
    name = f"pytest-sec-{os.getpid()}"
    try:
        info = devnode.start(name=name, security=True, fresh=True, roles_yml=SECURE_ROLES, users=SECURE_USERS)
    except devnode.NodeError as exc:
        pytest.fail(f"could not start the secured Elasticsearch node: {exc}", pytrace=False)
    _STARTED.append(f"secured Elasticsearch {info.version} node at {info.url} started in {info.started_in}s")
    try:
        yield info
    finally:
        devnode.stop(name, remove=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _STARTED:
        terminalreporter.write_line(f"integration: {line}")
