"""Helpers shared by test modules (imported from here, never from another test module)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy


async def eventually(check: Callable[[], Any], what: str, within: float = 60.0) -> None:
    """Poll `check` (plain or async) until truthy; a generous bound, never a speed assertion."""
    try:
        async with asyncio.timeout(within):
            while True:
                result = check()
                if asyncio.iscoroutine(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {within}s: {what}") from None


async def read_subject(js: JetStreamContext, subject: str, wait_s: float = 1.0) -> list[Msg]:
    """Every message JetStream holds on `subject`, oldest first ([] if none arrives)."""
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    found = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=wait_s)
            except nats.errors.TimeoutError:
                break
            found.append(msg)
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return found


PARIS = ZoneInfo("Europe/Paris")


def paris_local(days_from_now: int, at: str = "10:00", now: datetime | None = None) -> str:
    """A naive local date-time as staff type it ("YYYY-MM-DDTHH:MM"), `days_from_now` days
    after today in Europe/Paris: tests build their dates from now, never from a literal."""
    today = (now or datetime.now(UTC)).astimezone(PARIS).date()
    return f"{today + timedelta(days=days_from_now)}T{at}"


def next_clock_changes(after: datetime | None = None) -> tuple[date, date]:
    """The next day Europe/Paris springs forward (02:00 -> 03:00) and the next day it falls
    back (03:00 -> 02:00) after `after` (now by default): a calendar fact taken from the
    time zone database, so DST tests keep testing a date still to come, whatever the day."""
    day = (after or datetime.now(UTC)).astimezone(PARIS).date() + timedelta(days=1)
    spring = autumn = None
    while spring is None or autumn is None:
        before = datetime.combine(day, datetime.min.time(), PARIS).utcoffset()
        later = datetime.combine(day, datetime.min.time().replace(hour=12), PARIS).utcoffset()
        assert before is not None and later is not None
        if later > before and spring is None:
            spring = day
        if later < before and autumn is None:
            autumn = day
        day += timedelta(days=1)
    return spring, autumn


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


async def sizes_when_ready(registry: Any, within_s: float = 30.0) -> list[int]:
    """Run a RecipientRegistry's watch until it says ready, then stop it; the index's size
    at each moment `ready` was set (recorded inside `set`, before anything else runs)."""
    sizes: list[int] = []

    class Recording(asyncio.Event):
        def set(self) -> None:
            sizes.append(len(registry.index))
            super().set()

    registry.ready = Recording()
    task = asyncio.create_task(registry.watch())
    try:
        await asyncio.wait_for(registry.ready.wait(), within_s)
    finally:
        registry.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return sizes
