"""Conditional and compressed answers, and rendered answers kept until their data changes.

Many phones poll one village's feed: each poll of an unchanged feed costs a dictionary
look-up and, with `If-None-Match`, a 304 of no body. An answer is rendered (and gzipped)
once per change of the commune's notices, or when a notice starts, ends or leaves the feed.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from fastapi import Request, Response

# Below this size gzip saves nothing worth the client's work.
GZIP_MIN_BYTES = 1000


@dataclass
class Rendered:
    """One rendered answer, with the validators HTTP caches need."""

    body: bytes
    media_type: str
    last_modified: datetime | None = None
    etag: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    # RFC 9110 wants a gzipped body to have its own ETag; a notice's ETag is its version,
    # a contract of the API (If-Match), so it stays the same whatever the encoding.
    etag_per_encoding: bool = True
    _gzipped: bytes | None = None

    def __post_init__(self) -> None:
        if not self.etag:
            self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'

    @property
    def gzipped(self) -> bytes:
        if self._gzipped is None:
            # mtime=0: the same body gives the same bytes, so a cache's copy stays valid.
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped


def _tags(header: str) -> set[str]:
    # A weak comparison is what RFC 9110 asks of If-None-Match.
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


def _gzip_tag(etag: str) -> str:
    return etag[:-1] + '-gzip"'


def not_modified(request: Request, etag: str, last_modified: datetime | None) -> bool:
    """Whether the client's copy is still good (If-None-Match, else If-Modified-Since)."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = _tags(inm)
        return "*" in tags or etag in tags or _gzip_tag(etag) in tags
    ims = request.headers.get("if-modified-since")
    if ims is None or last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(ims)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False  # RFC 9110: an invalid date is ignored
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified.replace(microsecond=0) <= since


def http_date(moment: datetime) -> str:
    """An HTTP-date (RFC 9110): GMT, whole seconds."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether `Accept-Encoding` allows gzip (RFC 9110 12.5.3: `gzip;q=0` refuses it)."""
    for coding in accept_encoding.lower().split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
        try:
            return float(q) > 0
        except ValueError:
            return False
    return False


def answer(request: Request, rendered: Rendered, status_code: int = 200) -> Response:
    """The rendered answer, gzipped if the client accepts it, or a 304 if the client has it."""
    headers = dict(rendered.headers)
    if rendered.last_modified is not None:
        headers["Last-Modified"] = http_date(rendered.last_modified)
    headers["Vary"] = "Accept-Encoding"
    use_gzip = (len(rendered.body) >= GZIP_MIN_BYTES
                and accepts_gzip(request.headers.get("accept-encoding", "")))
    gzip_tag = use_gzip and rendered.etag_per_encoding
    headers["ETag"] = _gzip_tag(rendered.etag) if gzip_tag else rendered.etag
    if not_modified(request, rendered.etag, rendered.last_modified):
        return Response(status_code=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
        return Response(rendered.gzipped, status_code=status_code, headers=headers,
                        media_type=rendered.media_type)
    return Response(rendered.body, status_code=status_code, headers=headers,
                    media_type=rendered.media_type)


@dataclass
class _Entry:
    stamp: Hashable
    valid_until: datetime | None
    rendered: Rendered


class RenderCache:
    """Rendered answers by key, each valid while its stamp is unchanged and its time not past."""

    def __init__(self, max_bytes: int = 32_000_000) -> None:
        self._entries: dict[Hashable, _Entry] = {}
        # Bounded by size, not count: paging parameters are the client's to vary.
        self.max_bytes = max_bytes
        self._bytes = 0
        self.renders = 0

    async def get(
        self, key: Hashable, stamp: Hashable, now: datetime,
        render: Callable[[], Awaitable[tuple[Rendered, datetime | None]]],
    ) -> Rendered:
        entry = self._entries.get(key)
        if entry is not None and entry.stamp == stamp and (
            entry.valid_until is None or now < entry.valid_until
        ):
            return entry.rendered
        rendered, valid_until = await render()
        self.renders += 1
        if entry is not None:
            self._bytes -= len(entry.rendered.body)
        if self._bytes + len(rendered.body) > self.max_bytes:
            # Crude but bounded: every village's first pages fit many times over.
            self._entries.clear()
            self._bytes = 0
        self._entries[key] = _Entry(stamp, valid_until, rendered)
        self._bytes += len(rendered.body)
        return rendered
