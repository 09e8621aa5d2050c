"""The kit's group writer: items handed over one at a time are written in few groups."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from crieur.channel.grouped import GroupWriter


class Recorder:
    """A `write` that keeps each group, and can be made slow or failing."""

    def __init__(self, slow_s: float = 0.0, fail_first: bool = False) -> None:
        self.groups: list[list[int]] = []
        self.slow_s = slow_s
        self.fail_first = fail_first
        self.written = asyncio.Event()

    async def __call__(self, group: list[int]) -> None:
        if self.slow_s:
            await asyncio.sleep(self.slow_s)
        if self.fail_first and not self.groups:
            self.groups.append([])
            raise RuntimeError("NATS away")
        self.groups.append(group)
        self.written.set()

    async def until(self, groups: int) -> None:
        while len(self.groups) < groups:
            self.written.clear()
            await self.written.wait()


async def test_items_handed_over_a_few_ms_apart_are_written_as_one_group() -> None:
    write = Recorder()
    writer = GroupWriter(write, linger_s=0.2)
    for item in range(5):
        writer.add(item)
        await asyncio.sleep(0.005)  # sends finishing a few ms apart
    await asyncio.sleep(0.4)
    assert write.groups == [[0, 1, 2, 3, 4]]


async def test_without_a_linger_each_item_alone_is_written_at_once() -> None:
    write = Recorder()
    writer = GroupWriter(write, linger_s=0.0)
    for item in range(3):
        writer.add(item)
        await asyncio.sleep(0.01)
    await writer.flush()
    assert write.groups == [[0], [1], [2]]


async def test_a_full_group_is_written_without_waiting_for_the_linger() -> None:
    write = Recorder()
    writer = GroupWriter(write, linger_s=30.0, max_group=3)
    for item in range(7):
        writer.add(item)
    await asyncio.wait_for(write.until(2), 5)
    assert write.groups == [[0, 1, 2], [3, 4, 5]]
    assert writer.waiting == 1


async def test_flush_cuts_the_linger_short_and_waits_until_everything_is_written() -> None:
    write = Recorder(slow_s=0.05)
    writer = GroupWriter(write, linger_s=30.0)
    for item in range(4):
        writer.add(item)
    await asyncio.wait_for(writer.flush(), 5)
    assert write.groups == [[0, 1, 2, 3]]
    assert writer.waiting == 0


async def test_items_handed_over_during_a_write_go_in_the_next_group() -> None:
    write = Recorder(slow_s=0.1)
    writer = GroupWriter(write, linger_s=0.0)
    writer.add(1)
    await asyncio.sleep(0.02)  # the first group is being written
    writer.add(2)
    writer.add(3)
    await writer.flush()
    assert write.groups == [[1], [2, 3]]


async def test_after_a_flush_the_next_items_linger_again() -> None:
    write = Recorder()
    writer = GroupWriter(write, linger_s=0.3)
    writer.add(1)
    await writer.flush()
    writer.add(2)
    await asyncio.sleep(0.05)
    assert write.groups == [[1]], "the second item was written without its linger"
    await writer.flush()
    assert write.groups == [[1], [2]]


async def test_a_failing_write_is_logged_and_the_items_after_it_are_still_written() -> None:
    write = Recorder(fail_first=True)
    writer = GroupWriter(write, linger_s=0.0, name="sent_records")
    with capture_logs() as logs:
        writer.add(1)
        await asyncio.sleep(0.02)
        writer.add(2)
        await writer.flush()
    assert write.groups[-1] == [2]
    assert [e for e in logs if e["event"] == "group_write_failed"] == [
        {"event": "group_write_failed", "log_level": "error", "writer": "sent_records",
         "count": 1, "error": "RuntimeError('NATS away')"}]


async def test_flush_with_nothing_handed_over_returns_at_once() -> None:
    writer = GroupWriter(Recorder(), linger_s=30.0)
    await asyncio.wait_for(writer.flush(), 1)

