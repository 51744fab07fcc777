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
from yaml.constructor import SafeConstructor

from shipper.errors import ConfigError
from shipper.redact import mask_url

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
        }

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.masked().items())
        return f"FeedConfig({fields})"

    __str__ = __repr__


# ---------------------------------------------------------------------------------------------
# values

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_duration(text: str | int) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``1d``, ``1w``, ``1h30m`` or a number of seconds."""
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    elif isinstance(text, str) and text.strip():
        compact = text.strip().lower().replace(" ", "")
        if compact.isdigit():
            seconds = int(compact)
        else:
            parts = _DURATION.findall(compact)
            if "".join(n + u for n, u in parts) != compact:
                raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 1h, 1d)")
            seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 1h, 1d)")
    if seconds <= 0:
        raise ValueError("duration must be positive")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    out = ""
    for unit, size in sorted(_UNITS.items(), key=lambda kv: -kv[1]):
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


class _Errors:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[ConfigError] = []

    def add(self, node: yaml.Node, message: str) -> None:
        self.items.append(ConfigError(message, source=self.source, position=_line(node)))


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


FieldParser = Callable[[Any, "_FieldContext"], Any]


@dataclass(frozen=True, slots=True)
class _FieldContext:
    env: Mapping[str, str]
    base_dir: Path
    enabled: bool


def _f_name(value: Any, ctx: _FieldContext) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError("name must be letters, digits, '_', '.' or '-'")
    return value


def _f_location(value: Any, ctx: _FieldContext) -> tuple[str | Secret, str | None]:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("location must be a path or an http(s) URL")
    template = value.strip()
    expanded = expand_env(template, ctx.env) if ctx.enabled else template
    scheme = urlsplit(expanded).scheme.lower()
    if scheme in ("http", "https"):
        loc = expanded
    elif scheme == "file":
        loc = urlsplit(expanded).path
    elif len(scheme) <= 1:  # a relative or absolute path (a Windows drive letter looks like a scheme)
        path = Path(expanded).expanduser()
        loc = str(path if path.is_absolute() else ctx.base_dir / path)
    else:
        raise ValueError(f"location scheme {scheme!r} not supported (use a path, http or https)")
    if expanded != template:
        return Secret(loc), template
    return loc, None


def _f_format(value: Any, ctx: _FieldContext) -> str:
    if not isinstance(value, str):
        raise ValueError("format must be a format name or auto")
    if value != "auto":
        try:
            return get_format(value).name
        except Exception as exc:
            raise ValueError(str(exc)) from None
    return value


def _f_types(value: Any, ctx: _FieldContext) -> tuple[IndicatorType, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise ValueError("types must be a list of indicator types")
    bad = [t for t in items if t not in INDICATOR_TYPES]
    if bad:
        raise ValueError(f"unknown indicator type(s) {bad} (known: {', '.join(sorted(INDICATOR_TYPES))})")
    return tuple(dict.fromkeys(cast(list[IndicatorType], items)))


def _f_confidence(value: Any, ctx: _FieldContext) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError("confidence must be an integer from 0 to 100")
    return value


def _f_refresh(value: Any, ctx: _FieldContext) -> timedelta:
    return parse_duration(value)


def _f_enabled(value: Any, ctx: _FieldContext) -> bool:
    if not isinstance(value, bool):
        raise ValueError("enabled must be true or false")
    return value


def _f_kind(value: Any, ctx: _FieldContext) -> str:
    if value not in FEED_KINDS:
        raise ValueError(f"kind must be one of {', '.join(sorted(FEED_KINDS))}")
    return cast(str, value)


def _f_headers(value: Any, ctx: _FieldContext) -> tuple[tuple[str, Secret], ...]:
    if not isinstance(value, dict):
        raise ValueError("headers must be a mapping of header name to value")
    out: list[tuple[str, Secret]] = []
    for key, raw in value.items():
        if not isinstance(key, str) or not _HEADER_NAME.fullmatch(key):
            raise ValueError(f"invalid header name {key!r}")
        if not isinstance(raw, str | int):
            raise ValueError(f"header {key}: value must be a string")
        try:
            text = expand_env(str(raw), ctx.env) if ctx.enabled else str(raw)
        except ValueError as exc:
            raise ValueError(f"header {key}: {exc}") from None
        if "\n" in text or "\r" in text:
            raise ValueError(f"header {key}: value contains a line break")
        out.append((key, Secret(text)))
    return tuple(out)


def _f_timeout(value: Any, ctx: _FieldContext) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    return float(value)


def _f_deadline(value: Any, ctx: _FieldContext) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError("deadline must be a positive number of seconds")
    return float(value)


def _f_retries(value: Any, ctx: _FieldContext) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        raise ValueError("retries must be an integer from 0 to 10")
    return value


def _f_min_ratio(value: Any, ctx: _FieldContext) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError("min_ratio must be a number from 0 to 1")
    return float(value)


def _positive_int(name: str) -> FieldParser:
    def parse(value: Any, ctx: _FieldContext) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer")
        return value

    return parse


FIELDS: dict[str, FieldParser] = {
    "name": _f_name,
    "location": _f_location,
    "format": _f_format,
    "types": _f_types,
    "confidence": _f_confidence,
    "refresh": _f_refresh,
    "enabled": _f_enabled,
    "kind": _f_kind,
    "headers": _f_headers,
    "timeout": _f_timeout,
    "deadline": _f_deadline,
    "retries": _f_retries,
    "min_ratio": _f_min_ratio,
    "max_bytes": _positive_int("max_bytes"),
    "max_line": _positive_int("max_line"),
    "max_lines": _positive_int("max_lines"),
}
REQUIRED = ("name", "location")


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
    errors = _Errors(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", source=source, position=position) from None
    if root is None:
        return []
    seq = root
    if isinstance(root, yaml.MappingNode):
        keys = {k.value: v for k, v in root.value}
        unknown = [k for k, _ in root.value if k.value != "feeds"]
        for key_node in unknown:
            errors.add(key_node, f"unknown top-level key {key_node.value!r} (expected 'feeds')")
        seq = keys.get(
            "feeds", yaml.SequenceNode("tag:yaml.org,2002:seq", [], root.start_mark, root.end_mark)
        )
    feeds: list[FeedConfig] = []
    if not isinstance(seq, yaml.SequenceNode):
        errors.add(seq, "expected a list of feeds")
    else:
        ctx_env = os.environ if env is None else env
        seen: dict[str, str] = {}
        for node in seq.value:
            feed = _feed(node, errors, ctx_env, base_dir or Path.cwd())
            if feed is None:
                continue
            if feed.name in seen:
                errors.add(node, f"feed name {feed.name!r} already used ({seen[feed.name]})")
                continue
            seen[feed.name] = _line(node)
            feeds.append(feed)
    if errors.items:
        if len(errors.items) == 1:
            raise errors.items[0]
        raise FeedConfigErrors(errors.items, source=source)
    return feeds


def _feed(node: yaml.Node, errors: _Errors, env: Mapping[str, str], base_dir: Path) -> FeedConfig | None:
    if not isinstance(node, yaml.MappingNode):
        errors.add(node, "a feed must be a mapping (name, location, ...)")
        return None
    before = len(errors.items)
    constructor = SafeConstructor()
    nodes: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        if key not in FIELDS:
            errors.add(key_node, f"unknown feed key {key!r} (known: {', '.join(FIELDS)})")
        elif key in nodes:
            errors.add(key_node, f"feed key {key!r} given twice")
        else:
            nodes[key] = value_node
    for key in REQUIRED:
        if key not in nodes:
            errors.add(node, f"feed without {key!r}")
    values: dict[str, Any] = {}
    enabled = True
    if "enabled" in nodes:
        raw_enabled = constructor.construct_object(nodes["enabled"], deep=True)
        enabled = raw_enabled if isinstance(raw_enabled, bool) else True
    ctx = _FieldContext(env, base_dir, enabled)
    for key, value_node in nodes.items():
        try:
            raw = constructor.construct_object(value_node, deep=True)
            values[key] = FIELDS[key](raw, ctx)
        except (ValueError, yaml.YAMLError) as exc:
            errors.add(value_node, f"{key}: {exc}")
    if len(errors.items) > before:
        return None
    location, display = values.pop("location")
    return FeedConfig(
        location=location,
        location_display=display,
        defined_at=f"{errors.source}:{node.start_mark.line + 1}",
        **values,
    )
