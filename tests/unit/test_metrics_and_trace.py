"""Readiness answers and the trace contract, without a server."""

from __future__ import annotations

import asyncio
import json

import httpx
import structlog
from starlette.applications import Starlette

from crieur import metrics, trace


def get(app: Starlette, path: str) -> httpx.Response:
    async def one() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as client:
            return await client.get(path)

    return asyncio.run(one())


def test_readyz_is_503_with_every_reason_and_200_once_nothing_is_wrong() -> None:
    problems = ["nats: disconnected"]

    async def nats() -> list[str]:
        return list(problems)

    async def hangs() -> list[str]:
        await asyncio.sleep(10)
        return []

    readiness = metrics.Readiness(nats, hangs, within_s=0.2)
    app = Starlette(routes=readiness.routes())
    answer = get(app, "/readyz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "not_ready", "reasons": [
        "nats: disconnected", "hangs: no answer from NATS"]}
    problems.clear()
    readiness.checks.remove(hangs)
    assert get(app, "/readyz").json() == {"status": "ready"}
    assert get(app, "/readyz").status_code == 200


def test_metrics_are_served_in_the_prometheus_text_format() -> None:
    metrics.DELIVERIES.labels("email", "sent").inc()
    answer = get(Starlette(routes=metrics.Readiness().routes()), "/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert 'crieur_deliveries_total{channel="email",outcome="sent"}' in answer.text


def test_a_task_that_stopped_is_a_reason() -> None:
    async def check() -> list[str]:
        done = asyncio.create_task(asyncio.sleep(0))
        await done
        running = asyncio.create_task(asyncio.sleep(10))
        try:
            return metrics.task_reasons({"done": done, "running": running, "never": None})
        finally:
            running.cancel()

    assert asyncio.run(check()) == ["task done: stopped", "task never: not started"]


def test_event_headers_carry_the_requests_trace_id_and_a_publication_time() -> None:
    with structlog.contextvars.bound_contextvars(trace_id="abc123"):
        headers = trace.event_headers("n1")
    assert headers[trace.NOTICE_ID] == "n1"
    assert headers[trace.TRACE_ID] == "abc123"
    assert trace.published_at(headers) is not None
    # Without a request, each event gets its own trace id.
    assert trace.event_headers("n1")[trace.TRACE_ID] != trace.event_headers("n1")[trace.TRACE_ID]
    # What the kit copies: the trace, never the message id or other headers.
    copied = trace.carried({**headers, "Nats-Msg-Id": "x", "Other": "y"})
    assert copied == headers


def test_bound_puts_the_notice_id_in_every_log_line_inside() -> None:
    with trace.bound({trace.TRACE_ID: "t1", trace.NOTICE_ID: "from-header"}, "from-body"):
        context = structlog.contextvars.get_contextvars()
    assert context["notice_id"] == "from-body"
    assert context["trace_id"] == "t1"
    assert "notice_id" not in structlog.contextvars.get_contextvars()
    assert json.dumps(trace.log_context(None)) == "{}"
