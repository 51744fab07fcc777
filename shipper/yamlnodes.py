"""One reader for the project's YAML files (shipper configuration, rules, feeds).

The text is composed into nodes, which keep their marks, so every error names the file and the
line of the offending key or value. A :class:`NodeReader` either raises at the first error (the
shipper configuration) or collects them all (``collect``: rules and feeds, where every problem is
reported and the caller goes on with the accessor's ``default``). Scalars are read as YAML values
(``typed``: rules and feeds, where a quoted ``"5"`` is text) or as their text (the shipper
configuration, where ``max_docs: "500"`` and ``verify_certs: yes`` have always worked).
The error type is the caller's (``error``), so callers keep their :class:`ConfigError` subclass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from yaml.constructor import SafeConstructor

from shipper.durations import parse_duration
from shipper.errors import ConfigError

E = TypeVar("E", bound=ConfigError)
Pair = tuple[yaml.Node, yaml.Node]  # (key node, value node)

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_BAD = object()  # a scalar already reported


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def line_error(message: str, source: str, line: int | None) -> ConfigError:
    """The plain flavour: ``file (line N): message``."""
    return ConfigError(message, source=source, position=None if line is None else f"line {line}")


def plain(node: yaml.Node) -> Any:
    """A node as plain Python (free-form parts such as an Elasticsearch query)."""
    return SafeConstructor().construct_object(node, deep=True)


class NodeReader(Generic[E]):
    """Typed accessors over nodes of one file; ``what`` names the value in messages."""

    def __init__(
        self,
        source: str,
        error: Callable[[str, str, int | None], E],
        *,
        collect: bool = False,
        typed: bool = False,
    ) -> None:
        self.source = source
        self.error = error
        self.collect = collect
        self.typed = typed
        self.errors: list[E] = []

    def fail(self, node: yaml.Node | None, message: str) -> None:
        """A problem at ``node``'s line: raised, or kept when collecting."""
        err = self.error(message, self.source, None if node is None else line_of(node))
        if not self.collect:
            raise err
        self.errors.append(err)

    def compose(self, text: str) -> yaml.Node | None:
        """The root node (None for an empty document); broken YAML always raises."""
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            problem = getattr(exc, "problem", None) or exc
            line = mark.line + 1 if mark is not None else None
            raise self.error(f"not valid YAML: {problem}", self.source, line) from exc

    def mapping(self, node: yaml.Node, what: str) -> dict[str, Pair]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
            return {}
        out: dict[str, Pair] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                self.fail(k, f"{what}: keys must be plain names")
            elif k.value in out:
                self.fail(k, f"{what}: {k.value!r} given twice")
            else:
                out[k.value] = (k, v)
        return out

    def section(self, node: yaml.Node, what: str) -> Section[E]:
        return Section(self, node, what)

    def _value(self, node: yaml.Node, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"{what} must be a single value")
            return _BAD
        if not self.typed:
            return str(node.value)
        try:
            return plain(node)
        except yaml.YAMLError as exc:  # a tag no safe constructor knows
            self.fail(node, f"{what}: {getattr(exc, 'problem', None) or exc}")
            return _BAD

    def _text(self, node: yaml.Node) -> str | None:
        """A scalar that reads as text (typed: a string or an integer), else None."""
        if not isinstance(node, yaml.ScalarNode):
            return None
        try:
            value = plain(node) if self.typed else str(node.value)
        except yaml.YAMLError:
            return None
        return None if isinstance(value, bool) or not isinstance(value, str | int) else str(value)

    def scalar(self, node: yaml.Node, what: str, default: str = "") -> str:
        """A single value as text, unstripped and possibly empty."""
        value = self._value(node, what)
        if value is _BAD:
            return default
        # typed: a bool is an int here, as it always was for header values ("True")
        if not isinstance(value, str | int):
            self.fail(node, f"{what} must be text")
            return default
        return str(value)

    def string(self, node: yaml.Node, what: str, default: str = "") -> str:
        value = self._value(node, what)
        if value is _BAD:
            return default
        if isinstance(value, str) and value.strip():
            return value.strip()
        self.fail(node, f"{what} must be a non-empty string")
        return default

    def strings(
        self, node: yaml.Node, what: str, *, pattern: re.Pattern[str] | None = None, kind: str = "value"
    ) -> tuple[str, ...]:
        """A list of strings (a single one is a list of one); ``pattern`` checks each."""
        if isinstance(node, yaml.ScalarNode):
            items = [node]
        elif isinstance(node, yaml.SequenceNode):
            items = node.value
        else:
            self.fail(node, f"{what} must be a list of strings")
            return ()
        out: list[str] = []
        for item in items:
            text = (self._text(item) or "").strip()
            if not text:
                self.fail(item, f"{what}: each entry must be a non-empty string")
            elif pattern is not None and not pattern.match(text):
                self.fail(item, f"{what}: {text!r} is not a valid {kind}")
            else:
                out.append(text)
        return tuple(out)

    def integer(
        self, node: yaml.Node, what: str, *, minimum: int = 0, maximum: int | None = None, default: int = 0
    ) -> int:
        value = self._value(node, what)
        if value is _BAD:
            return default
        if not self.typed:
            try:
                value = int(value.replace("_", ""))
            except ValueError:
                value = None
        whole = isinstance(value, int) and not isinstance(value, bool)
        if whole and minimum <= value and (maximum is None or value <= maximum):
            return int(value)
        span = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        self.fail(node, f"{what} must be an integer {span}")
        return default

    def number(
        self, node: yaml.Node, what: str, *, maximum: float | None = None, default: float = 0.0
    ) -> float:
        """A positive number; with ``maximum``, one from 0 to ``maximum``."""
        value = self._value(node, what)
        if value is _BAD:
            return default
        if not self.typed:
            try:
                value = float(value)
            except ValueError:
                value = None
        if isinstance(value, bool) or not isinstance(value, int | float):
            value = None
        # "not value <= 0" rather than "value > 0": a NaN has always passed the positive check
        elif (0 <= value <= maximum) if maximum is not None else not value <= 0:
            return float(value)
        span = f"a number from 0 to {maximum:g}" if maximum is not None else "a positive number"
        self.fail(node, f"{what} must be {span}")
        return default

    def boolean(self, node: yaml.Node, what: str, default: bool = False) -> bool:
        value = self._value(node, what)
        if value is _BAD:
            return default
        if not self.typed:
            word = value.strip().lower()
            value = True if word in _TRUE else False if word in _FALSE else None
        if isinstance(value, bool):
            return value
        self.fail(node, f"{what} must be true or false")
        return default

    def duration(self, node: yaml.Node, what: str, default: int = 0) -> int:
        """Seconds, in the grammar of :mod:`shipper.durations`."""
        value = self._value(node, what)
        if value is _BAD:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(node, f"{what}: {exc}")
            return default

    def secret_file(self, node: yaml.Node, what: str) -> str:
        """The stripped content of the file the value names."""
        path = self.string(node, what)
        if not path:
            return ""
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            self.fail(node, f"{what}: cannot read {path}: {exc.strerror or exc}")
            return ""


class Section(Generic[E]):
    """A mapping node's keys read through a :class:`NodeReader`. The key-based accessors name a
    value by its quoted key (``'interval'``); a missing ``required`` key is an error at the
    mapping's line."""

    def __init__(self, reader: NodeReader[E], node: yaml.Node, what: str) -> None:
        self.reader = reader
        self.node = node
        self.what = what
        self.keys = reader.mapping(node, what)

    def fail(self, node: yaml.Node, message: str) -> None:
        self.reader.fail(node, message)

    def check(self, known: Iterable[str]) -> None:
        """Every key not in ``known`` is an error listing the known ones."""
        names = sorted(set(known))
        for name, (knode, _v) in self.keys.items():
            if name not in names:
                self.fail(knode, f"unknown key {name!r} in {self.what} (allowed: {', '.join(names)})")

    def apply(self, handlers: Mapping[str, Callable[[yaml.Node], Any]]) -> dict[str, Any]:
        """Each key's value through its handler; a key without one is unknown."""
        self.check(handlers)
        return {key: handlers[key](v) for key, (_k, v) in self.keys.items() if key in handlers}

    def get(self, key: str, required: bool = False) -> yaml.Node | None:
        if key in self.keys:
            return self.keys[key][1]
        if required:
            self.fail(self.node, f"{self.what}: missing required key {key!r}")
        return None

    def string(self, key: str, *, required: bool = False, default: str = "") -> str:
        n = self.get(key, required)
        return default if n is None else self.reader.string(n, repr(key), default)

    def integer(
        self, key: str, *, required: bool = False, default: int = 0, minimum: int = 0, maximum: int = 10**9
    ) -> int:
        n = self.get(key, required)
        if n is None:
            return default
        return self.reader.integer(n, repr(key), minimum=minimum, maximum=maximum, default=default)

    def boolean(self, key: str, *, default: bool) -> bool:
        n = self.get(key)
        return default if n is None else self.reader.boolean(n, repr(key), default)

    def duration(self, key: str, *, required: bool = False, default: int = 0) -> int:
        n = self.get(key, required)
        return default if n is None else self.reader.duration(n, repr(key), default)

    def strings(
        self, key: str, *, required: bool = False, pattern: re.Pattern[str] | None = None, kind: str = "value"
    ) -> tuple[str, ...]:
        """As :meth:`NodeReader.strings`; a required list must not be empty either."""
        n = self.get(key, required)
        if n is None:
            return ()
        before = len(self.reader.errors)
        out = self.reader.strings(n, repr(key), pattern=pattern, kind=kind)
        if required and not out and len(self.reader.errors) == before:
            self.fail(n, f"{key!r} must not be empty")
        return out

    def section(self, key: str, *, required: bool = False, what: str | None = None) -> Section[E] | None:
        n = self.get(key, required)
        return None if n is None else Section(self.reader, n, what or key)

    def sections(self, key: str, what: str) -> list[Section[E]]:
        """A list of mappings, each a section named ``what``."""
        n = self.get(key)
        if n is None:
            return []
        if not isinstance(n, yaml.SequenceNode):
            self.fail(n, f"{key!r} must be a list")
            return []
        return [Section(self.reader, item, what) for item in n.value]
