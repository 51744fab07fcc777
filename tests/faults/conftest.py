"""Fixtures of the fault suite: a generated day of events and a prefix with the shipper's
templates installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipper.es import ClusterSettings
from tests.shipping import SHIP, generate_day, run


@pytest.fixture(scope="session")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_day(tmp_path_factory.mktemp("faults-day"))


@pytest.fixture
def ready(prefix: str, es_settings: ClusterSettings) -> str:
    run([*SHIP, "setup", "--index-prefix", prefix], es_settings.url)
    return prefix
