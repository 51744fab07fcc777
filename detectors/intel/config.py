"""Feed configuration: a YAML list of feeds loaded into frozen dataclasses.

```yaml
feeds:                       # or the list itself at the top level
  - name: feodo              # [A-Za-z0-9_.-]+, unique; names the cache directory
    location: https://feodotracker.abuse.ch/downloads/ipblocklist.csv   # or a local path
    format: auto             # a registered format name, or auto (detected from content)
    types: [ip]              # indicator types to keep (default: all)
    confidence: 75           # default 0-100 for indicators the feed gives none
    refresh: 1h              # 90s, 30m, 1h, 1d, 1w, 1h30m
    enabled: true
    kind: intel              # intel | allow
    headers:
      Auth-Key: ${ABUSECH_AUTH_KEY}   # ${VAR} / ${VAR:-default} from the environment
    timeout: 30              # seconds without data before a request gives up
    deadline: 600            # seconds a whole download may take (a slow drip never hangs cron)
    retries: 3               # extra attempts on 5xx, 408, 429 and connection errors
    min_ratio: 0.1           # refuse a load under 10% of the last good one (0: no such check)
    max_bytes: 536870912     # bytes downloaded, and bytes after decompression (512 MiB)
    max_line: 16777216       # characters in one line (16 Mi)
    max_lines: 20000000      # lines in the feed
    retro_window: 30d        # retro-hunt the indicators a load adds over events this far back
                             # from the load (default: every retained event)
```

Every error names the file and line (from YAML node marks); all errors of a file are collected
before raising. Header values (and a location built from environment variables) are secrets:
they never appear in ``repr``/``str``/:meth:`FeedConfig.masked`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, cast, get_args
from urllib.parse import urlsplit

import yaml

from shipper.durations import UNITS
from shipper.errors import ConfigError
from shipper.redact import mask_url
from shipper.yamlnodes import NodeReader, line_error, line_of

from .formats import get_format
from .guard import DEFAULT_MIN_RATIO
from .limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_LINE, DEFAULT_MAX_LINES
from .model import INDICATOR_TYPES, IndicatorType, ParseOptions

FeedKind = Literal["intel", "allow"]
FEED_KINDS: frozenset[str] = frozenset(get_args(FeedKind))
MASK = "***"


class Secret:
    """A string that never shows itself: ``repr``/``str``/``format`` give ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True, slots=True, repr=False)
class FeedConfig:
    name: str
    location: str | Secret
    format: str = "auto"
    types: tuple[IndicatorType, ...] = ()  # empty: keep every type
    confidence: int | None = None
    refresh: timedelta = timedelta(hours=1)
    enabled: bool = True
    kind: FeedKind = "intel"
    headers: tuple[tuple[str, Secret], ...] = ()
    timeout: float = 30.0
    deadline: float = 600.0
    retries: int = 3
    min_ratio: float = DEFAULT_MIN_RATIO
    max_bytes: int = DEFAULT_MAX_BYTES
    max_line: int = DEFAULT_MAX_LINE
    max_lines: int = DEFAULT_MAX_LINES
    retro_window: timedelta | None = None  # None: every retained event
    defined_at: str | None = field(default=None, compare=False)  # "file:line"
    location_display: str | None = field(default=None, compare=False)  # before env expansion

    @property
    def url(self) -> str:
        """The location with any secret revealed (for the fetcher only)."""
        loc = self.location
        return loc.reveal() if isinstance(loc, Secret) else loc

    @property
    def is_remote(self) -> bool:
        return urlsplit(self.url).scheme.lower() in ("http", "https")

    @property
    def display_location(self) -> str:
        if isinstance(self.location, Secret):
            return self.location_display or MASK
        return mask_url(self.location)  # a key given in the query string is never shown or stored

    def request_headers(self) -> dict[str, str]:
        """Header values revealed, for the HTTP request itself."""
        return {k: v.reveal() for k, v in self.headers}

    def parse_options(self) -> ParseOptions:
        return ParseOptions(confidence=self.confidence)

    def keeps(self, kind: str) -> bool:
        return not self.types or kind in self.types

    def masked(self) -> dict[str, object]:
        """Everything, fit for printing: header values and secret locations masked."""
        return {
            "name": self.name,
            "location": self.display_location,
            "format": self.format,
            "types": list(self.types),
            "confidence": self.confidence,
            "refresh": format_duration(self.refresh),
            "enabled": self.enabled,
            "kind": self.kind,
            "headers": {k: MASK for k, _ in self.headers},
            "timeout": self.timeout,
            "deadline": self.deadline,
            "retries": self.retries,
            "min_ratio": self.min_ratio,
            "max_bytes": self.max_bytes,
            "max_line": self.max_line,
            "max_lines": self.max_lines,
            "retro_window": None if self.retro_window is None else format_duration(self.retro_window),
        }

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.masked().items())
        return f"FeedConfig({fields})"

    __str__ = __repr__


# ---------------------------------------------------------------------------------------------
# values

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    out = ""
    for unit, size in sorted(UNITS.items(), key=lambda kv: -kv[1]):
        if unit == "w":
            continue
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """``${VAR}`` and ``${VAR:-default}``; an unset variable without default is an error
    naming the variable (never its value)."""

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ValueError(f"environment variable {name} is not set")

    return _ENV.sub(sub, text)


# ---------------------------------------------------------------------------------------------
# loading


class FeedConfigErrors(ConfigError):
    """Several problems in one feed configuration file; ``errors`` lists them one by one."""

    def __init__(self, errors: list[ConfigError], *, source: str) -> None:
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"{len(errors)} problems:\n{lines}", source=source)


# Feed values are YAML values (typed); every error of the file is collected, each with its line.
Reader = NodeReader[ConfigError]
FieldReader = Callable[[Reader, yaml.Node, "_FieldContext"], Any]


@dataclass(frozen=True, slots=True)
class _FieldContext:
    env: Mapping[str, str]
    base_dir: Path
    enabled: bool


def _f_name(r: Reader, n: yaml.Node, ctx: _FieldContext) -> str:
    value = r.string(n, "name")
    if value and not _NAME.fullmatch(value):
        r.fail(n, "name must be letters, digits, '_', '.' or '-'")
    return value


def _f_location(r: Reader, n: yaml.Node, ctx: _FieldContext) -> tuple[str | Secret, str | None]:
    template = r.string(n, "location")
    try:
        expanded = expand_env(template, ctx.env) if ctx.enabled else template
    except ValueError as exc:
        r.fail(n, f"location: {exc}")
        return template, None
    scheme = urlsplit(expanded).scheme.lower()
    if scheme in ("http", "https"):
        loc = expanded
    elif scheme == "file":
        loc = urlsplit(expanded).path
    elif len(scheme) <= 1:  # a relative or absolute path (a Windows drive letter looks like a scheme)
        path = Path(expanded).expanduser()
        loc = str(path if path.is_absolute() else ctx.base_dir / path)
    else:
        r.fail(n, f"location: scheme {scheme!r} not supported (use a path, http or https)")
        return template, None
    if expanded != template:
        return Secret(loc), template
    return loc, None


def _f_format(r: Reader, n: yaml.Node, ctx: _FieldContext) -> str:
    value = r.string(n, "format")
    if value and value != "auto":
        try:
            return get_format(value).name
        except Exception as exc:
            r.fail(n, f"format: {exc}")
    return value


def _f_types(r: Reader, n: yaml.Node, ctx: _FieldContext) -> tuple[IndicatorType, ...]:
    items = r.strings(n, "types")
    bad = [t for t in items if t not in INDICATOR_TYPES]
    if bad:
        known = ", ".join(sorted(INDICATOR_TYPES))
        r.fail(n, f"types: unknown indicator type(s) {bad} (known: {known})")
    return tuple(dict.fromkeys(cast(tuple[IndicatorType, ...], items)))


def _f_kind(r: Reader, n: yaml.Node, ctx: _FieldContext) -> str:
    value = r.string(n, "kind")
    if value and value not in FEED_KINDS:
        r.fail(n, f"kind must be one of {', '.join(sorted(FEED_KINDS))}")
    return value


def _f_headers(r: Reader, n: yaml.Node, ctx: _FieldContext) -> tuple[tuple[str, Secret], ...]:
    out: list[tuple[str, Secret]] = []
    for key, (knode, vnode) in r.mapping(n, "headers").items():
        if not _HEADER_NAME.fullmatch(key):
            r.fail(knode, f"headers: invalid header name {key!r}")
            continue
        raw = r.scalar(vnode, f"header {key}")
        try:
            text = expand_env(raw, ctx.env) if ctx.enabled else raw
        except ValueError as exc:
            r.fail(vnode, f"header {key}: {exc}")
            continue
        if "\n" in text or "\r" in text:
            r.fail(vnode, f"header {key}: value contains a line break")
        out.append((key, Secret(text)))
    return tuple(out)


FIELDS: dict[str, FieldReader] = {
    "name": _f_name,
    "location": _f_location,
    "format": _f_format,
    "types": _f_types,
    "confidence": lambda r, n, _: r.integer(n, "confidence", minimum=0, maximum=100),
    "refresh": lambda r, n, _: timedelta(seconds=r.duration(n, "refresh", default=1)),
    "kind": _f_kind,
    "headers": _f_headers,
    "timeout": lambda r, n, _: r.number(n, "timeout"),
    "deadline": lambda r, n, _: r.number(n, "deadline"),
    "retries": lambda r, n, _: r.integer(n, "retries", minimum=0, maximum=10),
    "min_ratio": lambda r, n, _: r.number(n, "min_ratio", maximum=1),
    "max_bytes": lambda r, n, _: r.integer(n, "max_bytes", minimum=1),
    "max_line": lambda r, n, _: r.integer(n, "max_line", minimum=1),
    "max_lines": lambda r, n, _: r.integer(n, "max_lines", minimum=1),
    "retro_window": lambda r, n, _: timedelta(seconds=r.duration(n, "retro_window", default=1)),
}
REQUIRED = ("name", "location")
KEYS = (*FIELDS, "enabled")  # enabled is read before the others (below)


def load_feeds(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> list[FeedConfig]:
    """Read a feed configuration file; raises one :class:`ConfigError` listing every problem
    (each with file and line), its ``errors`` attribute holding them one by one."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read feed configuration: {exc.strerror or exc}", source=source) from None
    return loads_feeds(text, source=source, base_dir=Path(path).parent, env=env)


def loads_feeds(
    text: str,
    *,
    source: str = "<string>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> list[FeedConfig]:
    r = NodeReader(source, line_error, collect=True, typed=True)
    root = r.compose(text)
    if root is None:
        return []
    seq: yaml.Node | None = root
    if isinstance(root, yaml.MappingNode):
        top = r.section(root, "the feed configuration")
        top.check(("feeds",))
        seq = top.get("feeds")
    feeds: list[FeedConfig] = []
    if seq is not None and not isinstance(seq, yaml.SequenceNode):
        r.fail(seq, "expected a list of feeds")
    elif seq is not None:
        ctx_env = os.environ if env is None else env
        seen: dict[str, int] = {}
        for node in seq.value:
            feed = _feed(r, node, ctx_env, base_dir or Path.cwd())
            if feed is None:
                continue
            if feed.name in seen:
                r.fail(node, f"feed name {feed.name!r} already used (line {seen[feed.name]})")
                continue
            seen[feed.name] = line_of(node)
            feeds.append(feed)
    if len(r.errors) == 1:
        raise r.errors[0]
    if r.errors:
        raise FeedConfigErrors(r.errors, source=source)
    return feeds


def _feed(r: Reader, node: yaml.Node, env: Mapping[str, str], base_dir: Path) -> FeedConfig | None:
    if not isinstance(node, yaml.MappingNode):
        r.fail(node, "a feed must be a mapping (name, location, ...)")
        return None
    before = len(r.errors)
    s = r.section(node, "feed")
    s.check(KEYS)
    for key in REQUIRED:
        s.get(key, required=True)
    # read first: a disabled feed's ${VAR}s are not expanded, so they need not be set
    enabled_node = s.get("enabled")
    enabled = enabled_node is None or r.boolean(enabled_node, "enabled", default=True)
    ctx = _FieldContext(env, base_dir, enabled)
    values = {k: FIELDS[k](r, v, ctx) for k, (_kn, v) in s.keys.items() if k in FIELDS}
    if len(r.errors) > before:
        return None
    location, display = values.pop("location")
    return FeedConfig(
        location=location,
        location_display=display,
        enabled=enabled,
        defined_at=f"{r.source}:{line_of(node)}",
        **values,
    )
