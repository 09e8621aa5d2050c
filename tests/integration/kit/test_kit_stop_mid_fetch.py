"""A stop cancels the pull loop's waiting fetch instead of waiting it out (a second at every
shutdown of every channel); what the server delivered meanwhile sits in the subscription's
queue, and goes back to the server at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

from crieur.channel.consumers import pull_loop
from crieur.natsx import take_queued
from tests.integration.helpers import wait_for


@pytest.fixture
async def stream(nc: Client) -> AsyncIterator[str]:
    name = f"STOP{uuid.uuid4().hex[:8]}"
    await nc.jetstream().add_stream(name=name, subjects=[f"{name.lower()}.>"])
    yield name
    await nc.jetstream().delete_stream(name)


async def waiting_pull(sub: JetStreamContext.PullSubscription) -> None:
    """Until the fetch's pull request waits on the server."""
    deadline = asyncio.get_running_loop().time() + 30
    while (await sub.consumer_info()).num_waiting < 1:
        assert asyncio.get_running_loop().time() < deadline, "no pull request waiting"
        await asyncio.sleep(0.05)


async def test_a_stop_ends_the_pull_loop_without_waiting_out_its_fetch(
        nc: Client, stream: str) -> None:
    js = nc.jetstream()
    stopping, armed = asyncio.Event(), asyncio.Event()
    handled: list[Msg] = []

    async def handle(msgs: list[Msg]) -> None:
        handled.extend(msgs)

    async def ensure() -> None:
        return None

    loop = asyncio.ensure_future(pull_loop(
        js, stream=stream, subject=f"{stream.lower()}.>", config=ConsumerConfig(
            durable_name="d", ack_wait=30), batch=10, handle=handle, stopping=stopping,
        ensure=ensure, armed=armed, wait_s=60))
    await asyncio.wait_for(armed.wait(), 30)
    # The loop's fetch waits on the server (up to 60 s).
    await waiting_pull(await js.pull_subscribe_bind("d", stream=stream))
    stopping.set()
    # Well before the fetch's 60 s: the stop did not wait it out.
    await asyncio.wait_for(loop, 30)
    assert handled == []


async def test_what_came_after_a_cancelled_fetch_is_taken_from_the_queue(
        nc: Client, stream: str) -> None:
    js = nc.jetstream()
    sub = await js.pull_subscribe(f"{stream.lower()}.>", durable="d", stream=stream)
    fetching = asyncio.ensure_future(sub.fetch(1, timeout=30))
    await waiting_pull(sub)
    fetching.cancel()
    await asyncio.wait((fetching,))
    # Its pull request still waits on the server, which delivers the next message to it.
    await js.publish(f"{stream.lower()}.x", b"late")
    await wait_for(lambda: sub.pending_msgs >= 1, 30, "the late message in the queue")

    queued = take_queued(sub)
    assert [m.data for m in queued] == [b"late"]
    assert sub.pending_msgs == 0
    await queued[0].nak()
    # Back on the server at once: the next fetch has it again, redelivered.
    again = await sub.fetch(1, timeout=30)
    assert [m.data for m in again] == [b"late"]
    assert again[0].metadata.num_delivered == 2
    await again[0].ack()
    await sub.unsubscribe()
