"""``sysmon-detect setup``: the alert templates and the state index.

Alerts reuse the event templates' components (``<prefix>-events-settings`` and
``<prefix>-events-mappings``, installed here too through :mod:`shipper.templates`) so that every
ECS field an alert copies from its event has exactly the event's type, and add
``<prefix>-alerts-mappings`` (``mappings/alerts-mappings.json``) for ``alert.*``, ``rule.*``,
``threat.*`` and ``ancestry.*``; ``<prefix>-hunt-stack`` (``mappings/hunt-stack.json``, the
saved stacks of ``hunt save``) is composed of the same event components.
"""

from __future__ import annotations

import json
from typing import Any

from elasticsearch import Elasticsearch

from detectors.state import ensure_state_index
from shipper import templates as event_templates
from shipper.templates import fill_prefix, mappings_dir


def _load(name: str, prefix: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((mappings_dir() / name).read_text(encoding="utf-8"))
    filled: dict[str, Any] = fill_prefix(body, prefix)
    return filled


def alerts_index(prefix: str, suffix: str) -> str:
    """``<prefix>-alerts-YYYY.MM``; ``suffix`` is ``YYYY.MM`` of the source event's time."""
    return f"{prefix}-alerts-{suffix}"


def setup_alerts(es: Elasticsearch, prefix: str = "sysmon") -> list[str]:
    """Install (idempotently) everything detectors write to; returns what was done."""
    done: list[str] = []
    for t, change in event_templates.install(es, prefix):
        done.append(f"{t.kind} template {t.name}: {change}")
    es.cluster.put_component_template(
        name=f"{prefix}-alerts-mappings", body=_load("alerts-mappings.json", prefix)
    )
    done.append(f"component template {prefix}-alerts-mappings: installed")
    es.indices.put_index_template(name=f"{prefix}-alerts", body=_load("alerts-index-template.json", prefix))
    done.append(f"index template {prefix}-alerts: installed")
    # saved stacks (`hunt save`) take the events' field types for their by-fields
    es.indices.put_index_template(name=f"{prefix}-hunt-stack", body=_load("hunt-stack.json", prefix))
    done.append(f"index template {prefix}-hunt-stack: installed")
    created = ensure_state_index(es, prefix)
    done.append(f"index {prefix}-state: {'created' if created else 'exists'}")
    return done
