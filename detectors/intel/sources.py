"""Fetching feeds: local files as they are, http(s) URLs through a local cache.

* Conditional requests: the cached ``ETag`` goes out as ``If-None-Match`` and ``Last-Modified``
  as ``If-Modified-Since``; a ``304`` means the cached body is current.
* The cache holds, per feed, ``<cache>/<feed name>/body`` and ``meta.json``, each written to a
  temporary file and renamed into place, so a crash never leaves a half-written body behind.
  ``meta.json`` records the body's size; a body that does not match is never revalidated.
* Timeouts per request; bounded retries with exponential backoff on connection errors, 408, 429
  and 5xx; other 4xx fail at once.
* On failure the previous cached body stays in place and the result says so
  (``status="failed"``, ``path`` to the old body or None, ``error``).
* TLS certificates and host names are verified (the stdlib default context); a redirect to
  another host drops the feed's own headers, so an ``Auth-Key`` is never sent elsewhere.
* Nothing logged or returned carries a header value or a secret location.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPException, HTTPMessage
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from .config import FeedConfig
from .limits import ReadLimits
from .model import ParseIssue, ParseItem
from .parsing import parse_path

log = logging.getLogger(__name__)

FetchStatus = Literal["fresh", "not_modified", "failed", "local"]
CHUNK = 1 << 16
MAX_BACKOFF = 60.0
USER_AGENT = "sysmon-detect-intel/0.1"
RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a fetch did. ``path`` is the body to parse (the fresh one, the cached one on
    ``not_modified`` or ``failed``, the file itself on ``local``), None if there is none."""

    feed: str
    status: FetchStatus
    path: Path | None
    error: str | None = None
    http_status: int | None = None
    attempts: int = 0
    fetched_at: str | None = None  # when the body at ``path`` was downloaded

    @property
    def usable(self) -> bool:
        return self.path is not None


@dataclass(frozen=True, slots=True)
class CacheMeta:
    url_hash: str
    etag: str | None
    last_modified: str | None
    fetched_at: str
    checked_at: str
    size: int
    sha256: str


class FeedCache:
    """``<root>/<feed name>/{body,meta.json}``, written atomically."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def dir(self, feed: str) -> Path:
        return self.root / feed

    def body_path(self, feed: str) -> Path:
        return self.dir(feed) / "body"

    def meta_path(self, feed: str) -> Path:
        return self.dir(feed) / "meta.json"

    def read_meta(self, feed: str) -> CacheMeta | None:
        """The metadata of a complete cached body, or None (missing, unreadable, or not
        matching the body on disk)."""
        try:
            data = json.loads(self.meta_path(feed).read_text(encoding="utf-8"))
            meta = CacheMeta(**data)
            if self.body_path(feed).stat().st_size != meta.size:
                return None
            return meta
        except (OSError, ValueError, TypeError):
            return None

    def has_body(self, feed: str) -> bool:
        return self.body_path(feed).is_file()

    def temp_file(self, feed: str) -> tuple[IO[bytes], Path]:
        self.dir(feed).mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.dir(feed), prefix=".body-", suffix=".tmp")
        return os.fdopen(fd, "wb"), Path(name)

    def commit(self, feed: str, temp_body: Path, meta: CacheMeta) -> None:
        os.replace(temp_body, self.body_path(feed))
        self.write_meta(feed, meta)

    def write_meta(self, feed: str, meta: CacheMeta) -> None:
        self.dir(feed).mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.dir(feed), prefix=".meta-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({k: getattr(meta, k) for k in CacheMeta.__dataclass_fields__}, out, indent=1)
            os.replace(name, self.meta_path(feed))
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but drops the feed's own headers when the host changes."""

    def __init__(self, secret_headers: Iterable[str]) -> None:
        self.secret = {h.lower() for h in secret_headers}

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc.lower() != urlsplit(req.full_url).netloc.lower():
            for name in list(new.headers):
                if name.lower() in self.secret:
                    del new.headers[name]
        return new


def build_opener(feed: FeedConfig, context: ssl.SSLContext | None = None) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context or ssl.create_default_context()),
        _SafeRedirect(k for k, _ in feed.headers),
    )


def _now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


Opener = Callable[[FeedConfig], urllib.request.OpenerDirector]


def fetch(
    feed: FeedConfig,
    cache_dir: str | os.PathLike[str],
    *,
    opener: Opener = build_opener,
    sleep: Callable[[float], None] = time.sleep,
    backoff: float = 1.0,
) -> FetchResult:
    """Bring one feed up to date; never raises for network or HTTP trouble."""
    if not feed.is_remote:
        path = Path(feed.url)
        if path.exists():
            return FetchResult(feed.name, "local", path)
        return FetchResult(feed.name, "failed", None, error=f"no such file: {feed.display_location}")

    cache = FeedCache(cache_dir)
    meta = cache.read_meta(feed.name)
    if meta is not None and meta.url_hash != _url_hash(feed.url):
        meta = None  # the location changed: the cached body is of another feed
    headers = _request_headers(feed, meta)
    director = opener(feed)
    failure = _Failure("not attempted", retry=False)
    http_status: int | None = None
    attempt = 0
    for attempt in range(1, feed.retries + 2):
        outcome = _attempt(feed, cache, director, headers, meta, attempt)
        if isinstance(outcome, FetchResult):
            return outcome
        failure = outcome
        if failure.http_status is not None:
            http_status = failure.http_status
        if not failure.retry or attempt > feed.retries:
            break
        delay = min(MAX_BACKOFF, backoff * 2 ** (attempt - 1))
        log.warning(
            "intel feed %s: %s (attempt %d of %d), retrying in %.1fs",
            feed.name,
            failure.error,
            attempt,
            feed.retries + 1,
            delay,
        )
        sleep(delay)
    return _failed(feed, cache, failure.error, http_status, attempt)


@dataclass(frozen=True, slots=True)
class _Failure:
    """Why one attempt failed and whether another may succeed."""

    error: str
    retry: bool
    http_status: int | None = None


def _request_headers(feed: FeedConfig, meta: CacheMeta | None) -> dict[str, str]:
    """The feed's own headers, made conditional on the cached copy's validators."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **feed.request_headers()}
    if meta is not None:
        if meta.etag:
            headers["If-None-Match"] = meta.etag
        if meta.last_modified:
            headers["If-Modified-Since"] = meta.last_modified
    return headers


def _attempt(
    feed: FeedConfig,
    cache: FeedCache,
    director: urllib.request.OpenerDirector,
    headers: dict[str, str],
    meta: CacheMeta | None,
    attempt: int,
) -> FetchResult | _Failure:
    """One request: the stored download, the cached copy on 304, or why it failed."""
    try:
        request = urllib.request.Request(feed.url, headers=headers)
        started = time.monotonic()
        with director.open(request, timeout=feed.timeout) as response:
            result = _store(feed, cache, response, attempt, started)
            log.info("intel feed %s: downloaded %s", feed.name, _size(result))
            return result
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304 and meta is not None:
            cache.write_meta(feed.name, _replace_checked(meta, _now()))
            log.info("intel feed %s: not modified", feed.name)
            return FetchResult(
                feed.name,
                "not_modified",
                cache.body_path(feed.name),
                http_status=304,
                attempts=attempt,
                fetched_at=meta.fetched_at,
            )
        return _Failure(f"HTTP {exc.code} {exc.reason}", exc.code in RETRYABLE_HTTP, exc.code)
    except DeadlineExceeded as exc:
        # a feed too slow to finish once will not finish on the next try
        return _Failure(str(exc), retry=False)
    except (urllib.error.URLError, HTTPException, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):  # connecting, waiting for the answer, or mid-body
            error = f"timed out after {feed.timeout:g}s (no data for that long)"
        else:
            error = f"connection failed: {reason}"
        return _Failure(error, retry=not isinstance(reason, ssl.SSLCertVerificationError))


def _failed(
    feed: FeedConfig, cache: FeedCache, error: str, http_status: int | None, attempts: int
) -> FetchResult:
    """The failed fetch, with the cached copy (if any) to keep using."""
    kept = cache.body_path(feed.name) if cache.has_body(feed.name) else None
    message = f"{error} from {feed.display_location}"
    old = cache.read_meta(feed.name)
    log.error(
        "intel feed %s: %s; %s",
        feed.name,
        message,
        "keeping the cached version" if kept else "no cached version",
    )
    return FetchResult(
        feed.name,
        "failed",
        kept,
        error=message,
        http_status=http_status,
        attempts=attempts,
        fetched_at=old.fetched_at if old else None,
    )


def _size(result: FetchResult) -> str:
    return f"{result.path.stat().st_size} bytes" if result.path else "nothing"


def _replace_checked(meta: CacheMeta, now: str) -> CacheMeta:
    data = {k: getattr(meta, k) for k in CacheMeta.__dataclass_fields__}
    data["checked_at"] = now
    return CacheMeta(**data)


class DeadlineExceeded(Exception):
    """A download that kept sending data but took longer than the feed's ``deadline``."""


def _store(feed: FeedConfig, cache: FeedCache, response: Any, attempt: int, started: float) -> FetchResult:
    """Stream a 200 response into the cache (memory flat in the body size), within the feed's
    ``deadline`` for the whole download (``timeout`` bounds each wait for data)."""
    out, temp = cache.temp_file(feed.name)
    digest = hashlib.sha256()
    size = 0
    try:
        # read1: whatever has arrived (at most CHUNK), so a slow drip meets the deadline check
        read = getattr(response, "read1", None) or response.read
        with out:
            while chunk := read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if size > feed.max_bytes:
                    raise DeadlineExceeded(
                        f"download is larger than {feed.max_bytes} bytes (max_bytes); stopped"
                    )
                if time.monotonic() - started > feed.deadline:
                    raise DeadlineExceeded(
                        f"download took longer than the {feed.deadline:g}s deadline ({size} bytes read)"
                    )
        now = _now()
        meta = CacheMeta(
            url_hash=_url_hash(feed.url),
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            fetched_at=now,
            checked_at=now,
            size=size,
            sha256=digest.hexdigest(),
        )
        cache.commit(feed.name, temp, meta)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return FetchResult(
        feed.name,
        "fresh",
        cache.body_path(feed.name),
        http_status=response.status,
        attempts=attempt,
        fetched_at=now,
    )


def fetch_all(
    feeds: Iterable[FeedConfig], cache_dir: str | os.PathLike[str], **kwargs: Any
) -> list[FetchResult]:
    """Fetch every enabled feed; one failing feed (even with an unexpected error) never keeps
    the others from being fetched."""
    results: list[FetchResult] = []
    for feed in feeds:
        if not feed.enabled:
            continue
        try:
            results.append(fetch(feed, cache_dir, **kwargs))
        except Exception as exc:  # a bug or a full disk: report it, go on with the next feed
            log.exception("intel feed %s: fetch failed", feed.name)
            cache = FeedCache(cache_dir)
            kept = cache.body_path(feed.name) if cache.has_body(feed.name) else None
            results.append(FetchResult(feed.name, "failed", kept, error=f"{type(exc).__name__}: {exc}"))
    return results


def is_due(feed: FeedConfig, cache_dir: str | os.PathLike[str], now: datetime | None = None) -> bool:
    """Whether the feed's refresh interval has passed since it was last checked."""
    if not feed.is_remote:
        return True
    meta = FeedCache(cache_dir).read_meta(feed.name)
    if meta is None:
        return True
    checked = datetime.fromisoformat(meta.checked_at.replace("Z", "+00:00"))
    return (now or datetime.now(tz=UTC)) - checked >= feed.refresh


def read_feed(
    feed: FeedConfig, result: FetchResult, *, deadline_at: float | None = None
) -> Iterator[ParseItem]:
    """The indicators (of the configured types) and issues of a fetched feed, within the feed's
    caps; ``deadline_at`` (``time.monotonic()``) bounds the parsing too."""
    if result.path is None:
        return
    limits = ReadLimits(
        max_bytes=feed.max_bytes,
        max_line=feed.max_line,
        max_lines=feed.max_lines,
        deadline_at=deadline_at,
        deadline=feed.deadline,
    )
    options = feed.parse_options()
    for item in parse_path(result.path, feed.format, source_name=feed.name, options=options, limits=limits):
        if isinstance(item, ParseIssue) or feed.keeps(item.type):
            yield item
