"""Helpers shared by test modules (imported from here, never from another test module)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


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
