"""One exception root for the project; every error says where it came from."""

from __future__ import annotations


class SysmonError(Exception):
    """Root of all project errors. ``source`` is a file (or ``<stdin>``), ``position`` a record
    number or line, so that every message can name where the problem is."""

    def __init__(self, message: str, *, source: str | None = None, position: str | None = None) -> None:
        self.message = message
        self.source = source
        self.position = position
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.source:
            where = self.source
            if self.position:
                where += f" ({self.position})"
            where += ": "
        return f"{where}{self.message}"


class InputError(SysmonError):
    """Input that cannot be read or understood (bad file, bad record, unknown format)."""


class ConfigError(SysmonError):
    """Bad configuration or rule file."""


class ClusterError(SysmonError):
    """Elasticsearch unreachable, refused credentials, too old, or rejected a request."""
