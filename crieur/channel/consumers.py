"""The kit's durable pull consumers, and the loop that keeps a pull subscription alive.

A pull request is lost with its server: after a restart (or any error) the loop asks
again, re-creating the consumer if the server lost it, for as long as the service runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

log = structlog.get_logger("crieur.channel.consumers")


def fanout_consumer(name: str, ack_wait_s: float) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=f"{name}-fanout",
        description=f"{name}: NOTICES events to plan into jobs",
        # Only events from the channel's first start on: a new channel does not mail the
        # whole history of the village. The durable remembers its place from then on.
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        # The fan-out marks the event in progress while it plans; a crashed planner's
        # event comes back after this long and is planned again (jobs deduplicated).
        ack_wait=ack_wait_s,
        # Unbounded at the server: the kit bounds attempts itself and writes a dead letter;
        # a server-side limit would strand the event silently.
        max_deliver=-1,
        # One event at a time, in order: a withdrawal is planned after its publication.
        max_ack_pending=1,
    )


def worker_consumer(name: str, ack_wait_s: float, max_ack_pending: int) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=f"{name}-worker",
        description=f"{name}: jobs to send",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        # Short enough that a killed worker's jobs come back soon; a slow send is kept
        # alive by in-progress acks every ack_wait/3, so it is never sent twice.
        ack_wait=ack_wait_s,
        max_deliver=-1,
        # Jobs out at once over every process sharing the queue: bounds the redeliveries
        # after a crash and the memory of each worker.
        max_ack_pending=max_ack_pending,
    )


Handler = Callable[[list[Msg]], Awaitable[None]]


async def pull_loop(js: JetStreamContext, *, stream: str, subject: str, config: ConsumerConfig,
                    batch: int, handle: Handler, stopping: asyncio.Event,
                    ensure: Callable[[], Awaitable[None]], armed: asyncio.Event | None = None,
                    wait_s: float = 1.0) -> None:
    """Fetch and handle batches until `stopping` is set; survives server restarts.

    `ensure` (re)creates the stream(s) before the consumer is (re)armed.
    """
    sub: JetStreamContext.PullSubscription | None = None
    bound = log.bind(consumer=config.durable_name)
    idle = 0
    while not stopping.is_set():
        try:
            if sub is None:
                await ensure()
                sub = await js.pull_subscribe(subject, durable=config.durable_name,
                                              stream=stream, config=config)
                bound.info("consumer_armed")
                if armed is not None:
                    armed.set()
            try:
                msgs = await sub.fetch(batch, timeout=wait_s)
            except TimeoutError:
                # A quiet queue. nats-py says so with its own TimeoutError, or with
                # asyncio's plain one when the wait ran out between its two pull requests;
                # taken for a failure, that one logged a warning every few seconds of quiet
                # and paused the loop a second: jobs queued meanwhile waited up to 1 s.
                idle += 1
                if idle % 10 == 0:
                    # A quiet queue, or a consumer the server no longer has (restarted
                    # without its store)? A fetch cannot tell; the consumer's info can.
                    await sub.consumer_info()
                continue
            idle = 0
            await handle(msgs)
        except Exception as error:
            if stopping.is_set():
                break
            # Consumer or stream gone (a server restarted empty), the server away, or a
            # batch that could not be finished (its jobs come back after ack_wait): never
            # let the loop die, ask again shortly.
            bound.warning("pull_failed", error=repr(error)[:300])
            if sub is not None and isinstance(error, nats.js.errors.NotFoundError):
                try:
                    await sub.unsubscribe()
                except nats.errors.Error:
                    pass
                sub = None
            await _sleep_or_stop(stopping, 1.0)
    if sub is not None:
        try:
            await sub.unsubscribe()
        except nats.errors.Error:
            pass


async def _sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        pass
