"""Background tasks are never lost: a failure is logged and the task started again."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from structlog.testing import capture_logs

from crieur.tasks import Supervisor, cancel_and_wait


async def test_a_failed_task_is_logged_with_its_stack_and_started_again() -> None:
    runs = 0
    again = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("display loop broke")
        again.set()
        await asyncio.sleep(3600)

    tasks = Supervisor("test", first_delay_s=0.05)
    with capture_logs() as logs:
        tasks.start("show", flaky)
        async with asyncio.timeout(10):
            while not tasks.failing:  # noqa: ASYNC110 - nothing else to wait on
                await asyncio.sleep(0.001)
            assert not tasks.healthy, "a task waiting to restart makes /healthz say so"
            await again.wait()
    assert tasks.healthy and tasks.failures == {"show": 1} and runs == 2
    [failed] = [e for e in logs if e["event"] == "task_failed"]
    assert failed["task"] == "show" and failed["exc_info"] is True
    assert any(e["event"] == "task_restarted" for e in logs)
    await tasks.stop()


async def test_stop_ends_a_task_that_turns_its_cancellation_into_another_error() -> None:
    """As a nats-py request cancelled mid-way does; the task's retry loop catches it."""
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 1:
                    raise RuntimeError("nats: timeout") from None
                raise

    tasks = Supervisor("test", first_delay_s=0.01)
    task = tasks.start("reporter", stubborn)
    await asyncio.sleep(0.05)
    async with asyncio.timeout(10):
        await tasks.stop(within_s=5)
    assert task.done() and swallowed >= 1


async def test_a_task_that_never_ends_does_not_hold_the_stop_forever() -> None:
    deaf_to_cancel = True

    async def deaf() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if not deaf_to_cancel:
                    raise

    tasks = Supervisor("test")
    task = tasks.start("deaf", deaf)
    await asyncio.sleep(0.05)
    with capture_logs() as logs:
        async with asyncio.timeout(10):
            await tasks.stop(within_s=1)
    assert not task.done()
    assert [e["tasks"] for e in logs if e["event"] == "tasks_not_stopped"] == [["test-deaf"]]
    deaf_to_cancel = False  # the test must not leave it running
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_cancel_and_wait_returns_once_the_task_has_ended() -> None:
    task = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_cancel_and_wait_lets_the_callers_own_cancellation_through() -> None:
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()  # a helper that takes its time to end

    helper = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    caller = asyncio.create_task(cancel_and_wait(helper))
    await asyncio.sleep(0.05)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    release.set()
    await asyncio.gather(helper, return_exceptions=True)
