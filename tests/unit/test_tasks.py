"""Background tasks are never lost: a failure is logged and the task started again."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from crieur.tasks import Supervisor


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
