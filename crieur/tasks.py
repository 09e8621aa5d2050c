"""Background tasks that never die silently: a failure is logged with its stack and retried."""

from __future__ import annotations

import asyncio
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
        self._stopping = False

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
                if self._stopping:
                    return  # a cancellation turned into another error (see stop)
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

    async def stop(self, within_s: float = 10.0) -> None:
        """Cancel every task and wait for it, for at most `within_s`.

        A task can swallow a cancellation: nats-py turns a request cancelled mid-way into its
        own error (nats-io/nats.py#373), which a retry loop catches and goes on. So the
        cancel is repeated until every task has ended; one still running after `within_s`
        is logged and left, and a service's stop never hangs on it (a test once waited
        300 s on a sign's stop)."""
        self._stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        running = [task for task in self._tasks if not task.done()]
        while running and loop.time() < deadline:
            for task in running:
                task.cancel()
            await asyncio.wait(running, timeout=0.5)
            running = [task for task in running if not task.done()]
        if running:
            log.error("tasks_not_stopped", service=self.service,
                      tasks=[task.get_name() for task in running])
        for task in self._tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: logged already by _keep if it mattered
        self._tasks.clear()


async def cancel_and_wait(task: asyncio.Task[object]) -> None:
    """Cancel `task` and wait until it has ended (a helper loop, when its work is done).

    Not left to end on its own later: a task still pending when the loop closes is
    reported destroyed. A cancellation of the caller meanwhile still reaches the caller.
    """
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
