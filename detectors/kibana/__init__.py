"""Kibana saved objects that ship with the project (``kibana/*.ndjson``).

* :mod:`.objects` — :func:`~.objects.load_objects` (errors name file and line),
  :func:`~.objects.with_prefix` (data view titles, ids and references for another index prefix),
  :func:`~.objects.export`.
* :mod:`.client` — :func:`~.client.import_objects`: Kibana's ``/api/saved_objects/_import``
  (multipart, ``kbn-xsrf``, API key or basic auth, TLS verified).
* :mod:`.cli` — ``sysmon-detect kibana export|import``.

What the objects run (their KQL and Lens layers as Elasticsearch requests) is checked by the
tests, with translators of their own (``tests/kibana_kql.py``, ``tests/kibana_queries.py``).
"""
