"""Every field the mapper can emit, with its intended Elasticsearch type.

The index templates are generated from (or checked against) this table, and a unit test checks
that every leaf of every document the mapper builds is listed here with a matching value type.
Arrays are not types in Elasticsearch: ``event.category``, ``process.args``, ``related.*``,
``registry.data.strings``, ``dns.resolved_ip`` and the ``dns.answers`` objects may hold lists.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

#: Types: ``keyword``, ``long``, ``date``, ``ip``, ``boolean``, ``match_only_text``.
#: ``winlog.event_data.*`` stands for an object whose subfields (Sysmon's EventData names) are all
#: keywords: map it as an object with a ``keyword`` dynamic template.
_FIELDS: dict[str, str] = {
    "@timestamp": "date",
    "message": "match_only_text",
    "ecs.version": "keyword",
    # event
    "event.kind": "keyword",
    "event.code": "keyword",
    "event.module": "keyword",
    "event.dataset": "keyword",
    "event.provider": "keyword",
    "event.category": "keyword",
    "event.type": "keyword",
    "event.action": "keyword",
    "event.created": "date",
    "event.original": "keyword",
    # error (pipeline errors, reader errors, Sysmon error reports)
    "error.type": "keyword",
    "error.message": "match_only_text",
    "error.code": "keyword",
    # host, log, rule
    "host.name": "keyword",
    "host.hostname": "keyword",
    "log.level": "keyword",
    "log.file.path": "keyword",
    "rule.name": "keyword",
    # user
    "user.id": "keyword",
    "user.name": "keyword",
    "user.domain": "keyword",
    # related
    "related.user": "keyword",
    "related.hash": "keyword",
    "related.ip": "ip",
    "related.hosts": "keyword",
    # winlog
    "winlog.channel": "keyword",
    "winlog.computer_name": "keyword",
    "winlog.event_id": "keyword",
    "winlog.record_id": "long",
    "winlog.provider_name": "keyword",
    "winlog.provider_guid": "keyword",
    "winlog.process.pid": "long",
    "winlog.process.thread.id": "long",
    "winlog.version": "long",
    "winlog.opcode": "keyword",
    "winlog.task": "keyword",
    "winlog.user.identifier": "keyword",
    "winlog.event_data.*": "keyword",
    # process
    "process.entity_id": "keyword",
    "process.pid": "long",
    "process.thread.id": "long",
    "process.executable": "keyword",
    "process.name": "keyword",
    "process.command_line": "keyword",
    "process.args": "keyword",
    "process.args_count": "long",
    "process.working_directory": "keyword",
    "process.pe.original_file_name": "keyword",
    "process.pe.company": "keyword",
    "process.pe.description": "keyword",
    "process.pe.file_version": "keyword",
    "process.pe.product": "keyword",
    "process.pe.imphash": "keyword",
    "process.hash.md5": "keyword",
    "process.hash.sha1": "keyword",
    "process.hash.sha256": "keyword",
    "process.hash.sha384": "keyword",
    "process.hash.sha512": "keyword",
    "process.parent.entity_id": "keyword",
    "process.parent.pid": "long",
    "process.parent.executable": "keyword",
    "process.parent.name": "keyword",
    "process.parent.command_line": "keyword",
    "process.parent.args": "keyword",
    "process.parent.args_count": "long",
    "process.parent.user.name": "keyword",
    "process.parent.user.domain": "keyword",
    # file
    "file.path": "keyword",
    "file.name": "keyword",
    "file.directory": "keyword",
    "file.extension": "keyword",
    "file.code_signature.subject_name": "keyword",
    "file.code_signature.status": "keyword",
    "file.code_signature.valid": "boolean",
    "file.code_signature.signed": "boolean",
    "file.pe.original_file_name": "keyword",
    "file.pe.company": "keyword",
    "file.pe.description": "keyword",
    "file.pe.file_version": "keyword",
    "file.pe.product": "keyword",
    "file.pe.imphash": "keyword",
    "file.hash.md5": "keyword",
    "file.hash.sha1": "keyword",
    "file.hash.sha256": "keyword",
    "file.hash.sha384": "keyword",
    "file.hash.sha512": "keyword",
    # sysmon (non-ECS, as Elastic's integration names them)
    "sysmon.file.archived": "boolean",
    "sysmon.file.is_executable": "boolean",
    "sysmon.dns.status": "keyword",
    # network
    "network.transport": "keyword",
    "network.protocol": "keyword",
    "network.direction": "keyword",
    "network.type": "keyword",
    "network.community_id": "keyword",
    "source.ip": "ip",
    "source.port": "long",
    "source.domain": "keyword",
    "destination.ip": "ip",
    "destination.port": "long",
    "destination.domain": "keyword",
    # dns
    "dns.question.name": "keyword",
    "dns.question.registered_domain": "keyword",
    "dns.question.subdomain": "keyword",
    "dns.question.top_level_domain": "keyword",
    "dns.answers.type": "keyword",
    "dns.answers.data": "keyword",
    "dns.resolved_ip": "ip",
    # registry
    "registry.path": "keyword",
    "registry.hive": "keyword",
    "registry.key": "keyword",
    "registry.value": "keyword",
    "registry.data.strings": "keyword",
    "registry.data.type": "keyword",
}

EMITTED_FIELDS: Final = MappingProxyType(_FIELDS)

#: Paths and command lines: ``keyword`` plus ``.text`` (text) and ``.caseless`` (lower-case
#: normaliser) multi-fields, per the house conventions.
MULTI_FIELD_PATHS: Final = frozenset(
    {
        "process.executable",
        "process.command_line",
        "process.working_directory",
        "process.parent.executable",
        "process.parent.command_line",
        "file.path",
        "file.directory",
        "registry.path",
        "registry.key",
        "dns.question.name",
    }
)

#: Keywords Sigma rules compare case-insensitively that are not paths: a ``.caseless`` multi-field
#: only (``detectors.sigma``). Every ``winlog.event_data`` value gets one too (dynamic template).
CASELESS_ONLY_PATHS: Final = frozenset(
    {
        "process.pe.original_file_name",
        "process.pe.company",
        "process.pe.description",
        "process.pe.file_version",
        "process.pe.product",
        "file.pe.original_file_name",
        "file.pe.company",
        "file.pe.description",
        "file.pe.file_version",
        "file.pe.product",
        "file.name",
        "process.name",
        "process.parent.name",
        "file.code_signature.subject_name",
        "file.code_signature.status",
        "network.transport",
        "network.protocol",
        "source.domain",
        "destination.domain",
        "registry.data.strings",
        "user.name",
        "user.domain",
        "process.parent.user.name",
        "process.parent.user.domain",
        "winlog.provider_name",
        "winlog.channel",
        "host.name",
        "rule.name",
    }
)
#: Every field with a ``.caseless`` multi-field.
CASELESS_PATHS: Final = MULTI_FIELD_PATHS | CASELESS_ONLY_PATHS
