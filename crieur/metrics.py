"""Prometheus metrics and readiness, the same way in every service.

Every service serves, on its existing HTTP port, `/metrics` (the Prometheus text format,
from the process-wide registry) and `/readyz` (200 when it can do its work: connected to
NATS, its streams and consumers found, its background tasks running; otherwise 503 with
the reasons). `/healthz` stays the liveness probe. The counters below are the only ones:
a service counts through them, so every service's metrics have the same names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime

from nats.aio.client import Client
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# Seconds, from a second to a day: a notice waits for quiet hours or a paced fan-out.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600,
                   24 * 3600)

MESSAGES = Counter(
    "crieur_messages_handled_total",
    "Bus messages a service handled (notice events, jobs, requests), by what came of them",
    ["service", "kind", "result"])
DELIVERIES = Counter(
    "crieur_deliveries_total",
    "Delivery reports published on DELIVERIES, by channel and outcome",
    ["channel", "outcome"])
RETRIES = Counter(
    "crieur_retries_total", "Sends that failed for a while and were retried later", ["channel"])
DEAD_LETTERS = Counter(
    "crieur_dead_letters_total", "Messages set aside on DEADLETTERS, by the service", ["service"])
NOTICE_EVENTS = Counter(
    "crieur_notice_events_published_total",
    "Notice events the front door published on NOTICES (published, corrected, withdrawn)",
    ["kind"])
SMS_CODE_BUDGET_REFUSED = Counter(
    "crieur_sms_code_budget_refused_total",
    "Confirmation-code SMS refused because the hourly budget was reached, by scope "
    "(all: every number; prefix: one number range)",
    ["scope"])
PUBLISH_TO_SEND = Histogram(
    "crieur_publish_to_send_seconds",
    "From the front door's publication of a notice event to a channel's sink accepting it",
    ["channel"], buckets=LATENCY_BUCKETS)
SEND_SECONDS = Histogram(
    "crieur_send_seconds", "How long one send to a channel's sink took",
    ["channel"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
HTTP_REQUESTS = Histogram(
    "crieur_http_request_seconds", "HTTP requests answered, by service and status class",
    ["service", "status"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))


def observe_publish_to_send(channel: str, published_at: float | None, now: datetime) -> None:
    """`published_at` is the event's `Crieur-Published-At` header (epoch seconds), if any."""
    if published_at is not None:
        PUBLISH_TO_SEND.labels(channel).observe(max(0.0, now.timestamp() - published_at))


async def metrics(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# A readiness check returns why the service is not ready (or nothing when it is).
Check = Callable[[], Awaitable[Iterable[str]]]


class Readiness:
    """Checks run on each `/readyz`; a check that does not answer within the bound fails."""

    def __init__(self, *checks: Check, within_s: float = 2.0) -> None:
        self.checks = list(checks)
        self.within_s = within_s

    def add(self, check: Check) -> None:
        self.checks.append(check)

    async def reasons(self) -> list[str]:
        found: list[str] = []
        for check in self.checks:
            try:
                found += list(await asyncio.wait_for(check(), self.within_s))
            except TimeoutError:
                found.append(f"{getattr(check, '__name__', 'check')}: no answer from NATS")
            except Exception as error:
                found.append(f"{getattr(check, '__name__', 'check')}: {error!r}"[:200])
        return found

    async def endpoint(self, _: Request) -> JSONResponse:
        reasons = await self.reasons()
        if reasons:
            return JSONResponse({"status": "not_ready", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready"})

    def routes(self) -> list[Route]:
        """`/readyz` and `/metrics`, for a Starlette or FastAPI app (`app.router.routes`)."""
        return [Route("/readyz", self.endpoint, methods=["GET"]),
                Route("/metrics", metrics, methods=["GET"])]


async def nats_reasons(nc: Client | None, streams: Iterable[str] = (),
                       consumers: Mapping[str, Iterable[str]] | None = None) -> list[str]:
    """Connected to NATS, each stream found, each durable consumer (stream -> names) found."""
    if nc is None:
        return ["nats: not connected yet"]
    if not nc.is_connected:
        return ["nats: disconnected"]
    js = nc.jetstream(timeout=1.5)
    found: list[str] = []
    for stream in streams:
        try:
            await js.stream_info(stream)
        except Exception as error:
            found.append(f"stream {stream}: {type(error).__name__}")
    for stream, names in (consumers or {}).items():
        for name in names:
            try:
                await js.consumer_info(stream, name)
            except Exception as error:
                found.append(f"consumer {stream}/{name}: {type(error).__name__}")
    return found


def task_reasons(tasks: Mapping[str, asyncio.Task[object] | asyncio.Task[None] | None]
                 ) -> list[str]:
    """Each background task exists and still runs."""
    found: list[str] = []
    for name, task in tasks.items():
        if task is None:
            found.append(f"task {name}: not started")
        elif task.done():
            found.append(f"task {name}: stopped")
    return found
