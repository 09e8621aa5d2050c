"""Background tasks that never die silently: a failure is logged with its stack and retried."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("crieur.tasks")


class Supervisor:
    """Runs a service's background tasks and starts a failed one again, with a backoff.

    A task that returns is done (a connect loop that connected); one that raises is
    logged (`task_failed`, with the stack) and started again after 0.5 s, 1 s... up to
    `max_delay_s`. `failing` names the tasks waiting to be started again, for /healthz.
    """

    def __init__(self, service: str, first_delay_s: float = 0.5, max_delay_s: float = 30.0,
                 ) -> None:
        self.service = service
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.failures: dict[str, int] = {}
        self.failing: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        task = asyncio.create_task(self._keep(name, run), name=f"{self.service}-{name}")
        self._tasks.append(task)
        return task

    async def _keep(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        delay = self.first_delay_s
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures[name] = self.failures.get(name, 0) + 1
                self.failing.add(name)
                log.exception("task_failed", service=self.service, task=name,
                              failures=self.failures[name], restart_in_s=delay)
            await asyncio.sleep(delay)
            self.failing.discard(name)
            log.warning("task_restarted", service=self.service, task=name)
            delay = min(delay * 2, self.max_delay_s)

    def running(self) -> dict[str, asyncio.Task[None]]:
        """The tasks by name, for /readyz (one that returned is done, not failed)."""
        return {task.get_name().removeprefix(f"{self.service}-"): task for task in self._tasks
                if not (task.done() and not task.cancelled() and task.exception() is None)}

    @property
    def healthy(self) -> bool:
        """No task is waiting to be started again after a failure."""
        return not self.failing

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
