"""A notice followed across services: its id and a trace id ride in NATS message headers.

The front door puts them on every NOTICES event (with the moment it published it); the
channel kit copies them onto each job and each DELIVERIES report. Whoever handles such a
message binds them into structlog's context variables, so every log line about the notice
carries `notice_id` (and `trace_id`), whichever service wrote it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator, Mapping

import structlog

NOTICE_ID = "Crieur-Notice-Id"
TRACE_ID = "Crieur-Trace-Id"
# When the front door published the event (epoch seconds): publish-to-send latency.
PUBLISHED_AT = "Crieur-Published-At"
CARRIED = (NOTICE_ID, TRACE_ID, PUBLISHED_AT)


def new_trace_id() -> str:
    return uuid.uuid4().hex


def current_trace_id() -> str:
    """The trace id bound in this context (an HTTP request's), or a new one."""
    bound = structlog.contextvars.get_contextvars().get("trace_id")
    return str(bound) if bound else new_trace_id()


def event_headers(notice_id: str) -> dict[str, str]:
    """Headers the front door adds to a NOTICES event."""
    return {NOTICE_ID: notice_id, TRACE_ID: current_trace_id(),
            PUBLISHED_AT: f"{time.time():.3f}"}


def carried(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The trace headers of a received message, to copy onto what it leads to."""
    return {k: v for k, v in (headers or {}).items() if k in CARRIED}


def published_at(headers: Mapping[str, str] | None) -> float | None:
    try:
        return float((headers or {})[PUBLISHED_AT])
    except (KeyError, ValueError):
        return None


def log_context(headers: Mapping[str, str] | None, notice_id: str | None = None
                ) -> dict[str, str]:
    """What to bind in the log context for a message (the body's notice id wins)."""
    found = dict(headers or {})
    context: dict[str, str] = {}
    if notice_id or found.get(NOTICE_ID):
        context["notice_id"] = notice_id or found[NOTICE_ID]
    if found.get(TRACE_ID):
        context["trace_id"] = found[TRACE_ID]
    return context


@contextlib.contextmanager
def bound(headers: Mapping[str, str] | None, notice_id: str | None = None) -> Iterator[None]:
    """Bind the notice id and trace id for the lines logged inside (and tasks started there)."""
    with structlog.contextvars.bound_contextvars(**log_context(headers, notice_id)):
        yield
