"""The kit's pull loop: a quiet queue is not a failure, whichever TimeoutError says so."""

from __future__ import annotations

import asyncio
from typing import Any

import nats.errors
import pytest
from structlog.testing import capture_logs

from crieur.channel.consumers import pull_loop, worker_consumer


class QuietThenBusy:
    """A pull subscription whose first fetches time out as nats-py's do, then hands out a
    batch: nats-py's own TimeoutError, and asyncio's plain one (raised when its wait runs
    out between its two pull requests)."""

    def __init__(self, quiet: list[BaseException]) -> None:
        self.quiet = list(quiet)
        self.fetches = 0

    async def fetch(self, batch: int, timeout: float) -> list[str]:  # noqa: ASYNC109 (nats-py's signature)
        self.fetches += 1
        if self.quiet:
            raise self.quiet.pop(0)
        return ["job"]

    async def consumer_info(self) -> None:
        return None

    async def unsubscribe(self) -> None:
        return None


class FakeJetStream:
    def __init__(self, sub: QuietThenBusy) -> None:
        self.sub = sub

    async def pull_subscribe(self, *args: Any, **kwargs: Any) -> QuietThenBusy:
        return self.sub


@pytest.mark.parametrize("error", [nats.errors.TimeoutError(), TimeoutError()],
                         ids=["nats-py's", "asyncio's"])
async def test_a_fetch_that_times_out_is_a_quiet_queue_not_a_failure(
        error: BaseException) -> None:
    sub = QuietThenBusy([error, error])
    stopping = asyncio.Event()
    handled: list[list[str]] = []

    async def handle(msgs: list[Any]) -> None:
        handled.append(msgs)
        stopping.set()

    async def ensure() -> None:
        return None

    with capture_logs() as logs:
        await asyncio.wait_for(pull_loop(
            FakeJetStream(sub), stream="JOBS", subject="jobs.x.>",  # type: ignore[arg-type]
            config=worker_consumer("x", 30.0, 10), batch=10, handle=handle,
            stopping=stopping, ensure=ensure), 30)
    assert handled == [["job"]]
    assert sub.fetches == 3
    # Before the fix, asyncio's TimeoutError was logged as a failed pull and the loop
    # paused a second before asking again.
    assert [entry["event"] for entry in logs if entry["log_level"] == "warning"] == []
