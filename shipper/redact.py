"""Secrets kept out of what people and indices see: URL userinfo and credential-looking query
parameters masked in URLs, and in any text that carries URLs (error messages, log lines)."""

from __future__ import annotations

import re
import sys
import traceback
from typing import NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "****"

# Query parameter names that carry a credential in the feeds and services people use.
_SECRET_PARAM = re.compile(
    r"(?i)^(api[-_]?key|apikey|auth[-_]?key|key|token|access[-_]?token|auth|authorization|secret|"
    r"client[-_]?secret|password|passwd|pwd|pass|sig|signature|x-api-key|session)$"
)
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+?(?=[.,;:)\]]*(?:[\s'\"<>]|$))")
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*:)[^/@]*@")
# "password: x", "api_key = x", "ES_PASSWORD=x" in a config line or an environment dump
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b([\w.-]*(?:password|passwd|secret|api[-_]?key|apikey|token)[\w.-]*)(\s*[:=]\s*)"
    r"(?![*]{4})(\"[^\"]*\"|'[^']*'|[^\s,}]+)"
)


def mask_url(url: str) -> str:
    """``url`` with its password (and a user given with it) and credential parameters masked.

    Anything that does not parse as a URL is returned unchanged."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed netloc
    except ValueError:
        return _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if sep else f"{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.match(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _SECRET_PARAM.match(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_text(text: str) -> str:
    """``text`` with every URL in it masked as :func:`mask_url` does, and ``key: value`` or
    ``key=value`` assignments whose key names a secret masked too."""
    text = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def echo_masked_traceback(exc: BaseException) -> NoReturn:
    """``--debug``: the traceback (with its chained causes, such as a YAML error quoting the line
    that holds a password) on stderr with secrets masked, then exit 1."""
    text = "".join(traceback.format_exception(exc))
    sys.stderr.write(mask_text(text))
    sys.stderr.flush()
    raise SystemExit(1)
