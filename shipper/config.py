"""Shipper configuration: a YAML file, then the environment, then command-line flags.

Example (every key optional)::

    cluster:
      urls: [https://es1.example:9200, https://es2.example:9200]   # or url: …
      api_key_file: /run/secrets/es_api_key      # or api_key / username + password(_file)
      ca_certs: /etc/sysmon/ca.crt
      verify_certs: true                          # the default; false only for throwaway tests
      request_timeout: 60
    index:
      prefix: sysmon
      shards: 1
      replicas: 0
    bulk:
      max_bytes: 5242880
      max_docs: 2000
      in_flight: 4
      max_retries: 8
    inputs:
      - /var/log/sysmon
      - path: /cases/IR-2026-114               # an input of its own labels and tags
        labels: {case: IR-2026-114}
        tags: [ir]
    state_dir: /var/lib/sysmon-detect
    dead_letter: /var/lib/sysmon-detect/dead-letter.ndjson

Precedence: defaults < file < environment (``ES_URL``, ``ES_API_KEY``, ``ES_USERNAME``,
``ES_PASSWORD``, ``ES_CA_CERTS``, ``ES_VERIFY_CERTS``, each secret also as ``*_FILE``;
``SYSMON_INDEX_PREFIX``, ``SYSMON_STATE_DIR``) < flags. Errors name the file and line. Secrets are
shown only through :meth:`ShipperConfig.masked`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import Elasticsearch

from shipper.checkpoint import default_state_dir
from shipper.detect_settings import DetectSettings, detect_section
from shipper.envelope import InputLabels, check_label
from shipper.errors import ConfigError
from shipper.es import ClusterSettings, make_client
from shipper.redact import mask_url
from shipper.sink import BulkOptions
from shipper.yamlnodes import NodeReader, line_error

PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
DEFAULT_PREFIX = "sysmon"


@dataclass(frozen=True)
class ShipperConfig:
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    urls: tuple[str, ...] = ()  # all cluster URLs; ``cluster.url`` is the first
    index_prefix: str = DEFAULT_PREFIX
    shards: int = 1
    replicas: int = 0
    bulk: BulkOptions = field(default_factory=BulkOptions)
    inputs: tuple[str, ...] = ()
    #: per configured input (as written in ``inputs``): the labels and tags of its documents
    input_labels: Mapping[str, InputLabels] = field(default_factory=dict)
    state_dir: str = field(default_factory=lambda: str(default_state_dir()))
    dead_letter: str | None = None
    #: the collector as documents name it (``agent.name``/``agent.id``; None: host name, and an
    #: id kept in the state directory), and the run's ``labels.*`` and ``tags``
    agent_name: str | None = None
    agent_id: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    detect: DetectSettings = field(default_factory=DetectSettings)  # stream detection
    source: str | None = None  # the YAML file it came from

    @property
    def dead_letter_path(self) -> str:
        return self.dead_letter or str(Path(self.state_dir) / "dead-letter.ndjson")

    def all_urls(self) -> tuple[str, ...]:
        return self.urls or (self.cluster.url,)

    def masked(self) -> dict[str, Any]:
        cluster = self.cluster.masked()
        cluster["urls"] = [mask_url(u) for u in self.all_urls()]
        return {
            "config_file": self.source,
            "cluster": cluster,
            "index": {"prefix": self.index_prefix, "shards": self.shards, "replicas": self.replicas},
            "bulk": {
                "max_bytes": self.bulk.max_bytes,
                "max_docs": self.bulk.max_docs,
                "in_flight": self.bulk.in_flight,
                "max_retries": self.bulk.max_retries,
            },
            "inputs": [self._input_shown(i) for i in self.inputs],
            "state_dir": self.state_dir,
            "dead_letter": self.dead_letter_path,
            "agent": {"name": self.agent_name, "id": self.agent_id},
            "labels": dict(self.labels),
            "tags": list(self.tags),
            "detect": self.detect.masked(),
        }

    def _input_shown(self, path: str) -> str | dict[str, Any]:
        extra = self.input_labels.get(path)
        if extra is None:
            return path
        return {"path": path, "labels": dict(extra.labels), "tags": list(extra.tags)}

    def client(self, **kwargs: Any) -> Elasticsearch:
        """A client for all configured URLs (TLS and credentials as ``shipper.es.make_client``)."""
        urls = self.all_urls()
        if len(urls) == 1:
            return make_client(replace(self.cluster, url=urls[0]), **kwargs)
        # The factory takes one URL; the transport options are the same for every node.
        opts: dict[str, Any] = {"request_timeout": self.cluster.request_timeout, **kwargs}
        s = self.cluster
        if s.api_key:
            opts["api_key"] = s.api_key
        elif s.username:
            opts["basic_auth"] = (s.username, s.password or "")
        if any(u.startswith("https") for u in urls):
            opts["verify_certs"] = s.verify_certs
            if s.ca_certs:
                opts["ca_certs"] = s.ca_certs
            if not s.verify_certs:
                opts["ssl_show_warn"] = False
        return Elasticsearch(list(urls), **opts)


# --------------------------------------------------------------------------------------------
# the file: every scalar read as its text, the first error raised with file and line

Reader = NodeReader[ConfigError]


def _compose(path: str | Path) -> tuple[Reader, yaml.Node | None]:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=source) from exc
    r = NodeReader(source, line_error)
    return r, r.compose(text)


def load_file(path: str | Path, base: ShipperConfig | None = None) -> ShipperConfig:
    """Read a YAML configuration file over ``base`` (defaults)."""
    r, root = _compose(path)
    cfg = replace(base or ShipperConfig(), source=r.source)
    if root is None:
        return cfg
    top = r.section(root, "the configuration")
    sections: dict[str, Callable[[Reader, yaml.Node, ShipperConfig], dict[str, Any]]] = {
        "cluster": _cluster_section,
        "index": _index_section,
        "bulk": _bulk_section,
        "agent": _agent_section,
        "labels": _labels_section,
        "inputs": _inputs_section,
        "tags": lambda r, n, _: {"tags": r.strings(n, "tags")},
        "state_dir": lambda r, n, _: {"state_dir": r.string(n, "state_dir")},
        "dead_letter": lambda r, n, _: {"dead_letter": r.string(n, "dead_letter")},
        "detect": detect_section,
    }
    top.check(sections)
    changes: dict[str, Any] = {}
    for key, (_knode, vnode) in top.keys.items():
        changes.update(sections[key](r, vnode, cfg))
    return replace(cfg, **changes)


def _cluster_section(r: Reader, node: yaml.Node, cfg: ShipperConfig) -> dict[str, Any]:
    c = r.section(node, "cluster").apply(
        {
            "url": lambda n: (r.string(n, "cluster.url"),),
            "urls": lambda n: r.strings(n, "cluster.urls"),
            "api_key": lambda n: r.string(n, "cluster.api_key"),
            "api_key_file": lambda n: r.secret_file(n, "cluster.api_key_file"),
            "username": lambda n: r.string(n, "cluster.username"),
            "password": lambda n: r.string(n, "cluster.password"),
            "password_file": lambda n: r.secret_file(n, "cluster.password_file"),
            "ca_certs": lambda n: r.string(n, "cluster.ca_certs"),
            "verify_certs": lambda n: r.boolean(n, "cluster.verify_certs"),
            "request_timeout": lambda n: r.number(n, "cluster.request_timeout"),
        }
    )
    if "url" in c and "urls" in c:
        r.fail(node, "cluster: give url or urls, not both")
    urls = cfg.urls
    new_urls = tuple(u.rstrip("/") for u in c.get("url", c.get("urls", ())))
    if new_urls:
        for u in new_urls:
            if not u.startswith(("http://", "https://")):
                r.fail(node, f"cluster: {u!r} is not an http(s) URL")
        urls = new_urls
    changes: dict[str, Any] = {}
    if urls:
        changes["url"] = urls[0]
    for name in ("api_key", "username", "password", "ca_certs", "verify_certs", "request_timeout"):
        if name in c:
            changes[name] = c[name]
    if "api_key_file" in c:
        changes["api_key"] = c["api_key_file"]
    if "password_file" in c:
        changes["password"] = c["password_file"]
    return {"cluster": replace(cfg.cluster, **changes), "urls": urls}


def _index_section(r: Reader, node: yaml.Node, cfg: ShipperConfig) -> dict[str, Any]:
    index = r.section(node, "index").apply(
        {
            "prefix": lambda n: _prefix(r, n),
            "shards": lambda n: r.integer(n, "index.shards", minimum=1),
            "replicas": lambda n: r.integer(n, "index.replicas", minimum=0),
        }
    )
    return {{"prefix": "index_prefix"}.get(k, k): v for k, v in index.items()}


def _bulk_section(r: Reader, node: yaml.Node, cfg: ShipperConfig) -> dict[str, Any]:
    b = r.section(node, "bulk").apply(
        {
            "max_bytes": lambda n: r.integer(n, "bulk.max_bytes", minimum=1024),
            "max_docs": lambda n: r.integer(n, "bulk.max_docs", minimum=1),
            "in_flight": lambda n: r.integer(n, "bulk.in_flight", minimum=1),
            "max_retries": lambda n: r.integer(n, "bulk.max_retries", minimum=0),
            "backoff_initial": lambda n: r.number(n, "bulk.backoff_initial"),
            "backoff_max": lambda n: r.number(n, "bulk.backoff_max"),
        }
    )
    return {"bulk": replace(cfg.bulk, **b)}


def _agent_section(r: Reader, node: yaml.Node, cfg: ShipperConfig) -> dict[str, Any]:
    agent = r.section(node, "agent").apply(
        {"name": lambda n: r.string(n, "agent.name"), "id": lambda n: r.string(n, "agent.id")}
    )
    return {f"agent_{k}": v for k, v in agent.items()}


def _labels_section(r: Reader, node: yaml.Node, cfg: ShipperConfig) -> dict[str, Any]:
    return {"labels": {**cfg.labels, **_labels(r, node, "labels")}}


def _labels(r: Reader, node: yaml.Node, what: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for key, (knode, vnode) in r.mapping(node, what).items():
        value = r.scalar(vnode, f"{what}.{key}")
        try:
            check_label(key, value, r.source)
        except ConfigError as exc:
            r.fail(knode, exc.message)
        labels[key] = value
    return labels


def _inputs_section(r: Reader, node: yaml.Node, cfg: ShipperConfig) -> dict[str, Any]:
    """``inputs``: paths, each a string or ``{path:, labels:, tags:}``."""
    if not isinstance(node, yaml.SequenceNode):
        return {"inputs": r.strings(node, "inputs"), "input_labels": {}}
    paths: list[str] = []
    extra: dict[str, InputLabels] = {}
    for item in node.value:
        if not isinstance(item, yaml.MappingNode):
            paths.extend(r.strings(item, "inputs"))
            continue
        entry = r.section(item, "an input")
        entry.check(("path", "labels", "tags"))
        path = entry.string("path", required=True)
        labels_node = entry.get("labels")
        labels = _labels(r, labels_node, f"inputs[{path}].labels") if labels_node is not None else {}
        paths.append(path)
        extra[path] = InputLabels(labels, tuple(dict.fromkeys(entry.strings("tags"))))
    return {"inputs": tuple(paths), "input_labels": extra}


def _prefix(r: Reader, node: yaml.Node) -> str:
    value = r.string(node, "index.prefix")
    if not PREFIX_RE.match(value):
        r.fail(node, f"index.prefix {value!r}: use lower-case letters, digits, '-', '_' and '.'")
    return value


def check_prefix(value: str, where: str) -> str:
    if not PREFIX_RE.match(value):
        raise ConfigError(
            f"index prefix {value!r}: use lower-case letters, digits, '-', '_' and '.'", source=where
        )
    return value


def apply_env(cfg: ShipperConfig, env: Mapping[str, str] | None = None) -> ShipperConfig:
    env = os.environ if env is None else env
    try:
        cluster = ClusterSettings.from_env(env, base=cfg.cluster)
    except OSError as exc:
        raise ConfigError(f"cannot read a secret file: {exc}", source="environment") from exc
    urls = cfg.urls
    if env.get("ES_URL"):
        urls = (cluster.url,)
    changes: dict[str, Any] = {"cluster": cluster, "urls": urls}
    if env.get("SYSMON_INDEX_PREFIX"):
        changes["index_prefix"] = check_prefix(env["SYSMON_INDEX_PREFIX"], "SYSMON_INDEX_PREFIX")
    if env.get("SYSMON_STATE_DIR"):
        changes["state_dir"] = env["SYSMON_STATE_DIR"]
    return replace(cfg, **changes)


def resolve(
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    url: str | None = None,
    ca_certs: str | None = None,
    insecure: bool = False,
    index_prefix: str | None = None,
    state_dir: str | None = None,
    dead_letter: str | None = None,
    replicas: int | None = None,
    bulk: Mapping[str, Any] | None = None,
    agent_name: str | None = None,
    labels: Mapping[str, str] | None = None,
    tags: tuple[str, ...] = (),
    detect: Mapping[str, Any] | None = None,
) -> ShipperConfig:
    """Defaults < file (``config_file`` or ``SYSMON_CONFIG``) < environment < flags (labels
    given as flags are added to the file's, and tags too)."""
    env = os.environ if env is None else env
    path = config_file or env.get("SYSMON_CONFIG")
    cfg = load_file(path) if path else ShipperConfig()
    cfg = apply_env(cfg, env)
    changes: dict[str, Any] = {}
    if agent_name:
        changes["agent_name"] = agent_name
    if labels:
        changes["labels"] = {**cfg.labels, **labels}
    if tags:
        changes["tags"] = tuple(dict.fromkeys((*cfg.tags, *tags)))
    cluster = cfg.cluster
    if url:
        cluster = replace(cluster, url=url.rstrip("/"))
        changes["urls"] = (cluster.url,)
    if ca_certs:
        cluster = replace(cluster, ca_certs=ca_certs)
    if insecure:
        cluster = replace(cluster, verify_certs=False)
    changes["cluster"] = cluster
    if index_prefix:
        changes["index_prefix"] = check_prefix(index_prefix, "--index-prefix")
    if state_dir:
        changes["state_dir"] = state_dir
    if dead_letter:
        changes["dead_letter"] = dead_letter
    if replicas is not None:
        changes["replicas"] = replicas
    if bulk:
        changes["bulk"] = replace(cfg.bulk, **{k: v for k, v in bulk.items() if v is not None})
    if detect:  # flags: --detect, --detect-config, --detect-rules-dir (added to the file's)
        d = {k: v for k, v in detect.items() if v not in (None, False, ())}
        if "rules_dirs" in d:
            d["rules_dirs"] = (*cfg.detect.rules_dirs, *d["rules_dirs"])
        changes["detect"] = replace(cfg.detect, **d)
    return replace(cfg, **changes)
