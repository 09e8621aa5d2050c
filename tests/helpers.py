"""Helpers shared by test modules (imported from here, never from another test module)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
