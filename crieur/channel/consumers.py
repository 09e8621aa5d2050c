"""The kit's durable pull consumers, and the loop that keeps a pull subscription alive.

A pull request is lost with its server: after a restart (or any error) the loop asks
again, re-creating the consumer if the server lost it, for as long as the service runs.

A fan-out durable re-created after it was lost (deleted by hand or by another client)
resumes where the lost one stood: its place on NOTICES is kept in the `sent` bucket, key
`<name>._resume.<durable>`, written when it is made, after each event it handled and
every few seconds of quiet.
Starting from NEW instead would never plan the notices published in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.kv import KeyValue

from crieur import natsx
from crieur.channel.lanes import Lane
from schemas import subjects
from schemas.streams import JOBS_STREAM, NOTICES_STREAM, SENT

log = structlog.get_logger("crieur.channel.consumers")


def durable(name: str, role: str, lane: Lane = Lane.NORMAL) -> str:
    """`<name>-fanout`, `<name>-worker`; the alert lane's `<name>-alert-fanout`..."""
    return f"{name}-{role}" if lane is Lane.NORMAL else f"{name}-alert-{role}"


def fanout_consumer(name: str, ack_wait_s: float, lane: Lane = Lane.NORMAL,
                    start_seq: int | None = None, max_ack_pending: int = 1) -> ConsumerConfig:
    """Both lanes read every NOTICES event (the subject does not carry the category); each
    plans those of its lane and acks the others at once.

    `max_ack_pending`: events planned at once. The alert lane plans one at a time (alerts
    in the order published); the normal lane several, one task per notice (Fanout).
    """
    return ConsumerConfig(
        durable_name=durable(name, "fanout", lane),
        description=f"{name}: NOTICES events to plan into jobs ({lane} lane)",
        # Only events from the channel's first start on: a new channel does not mail the
        # whole history of the village. The durable remembers its place from then on.
        # The alert lane, made after the normal one, starts where that one stands (see
        # ensure_consumers), so no event falls between the two.
        deliver_policy=DeliverPolicy.NEW if start_seq is None else DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=start_seq,
        ack_policy=AckPolicy.EXPLICIT,
        # The fan-out marks the event in progress while it plans; a crashed planner's
        # event comes back after this long and is planned again (jobs deduplicated).
        ack_wait=ack_wait_s,
        # Unbounded at the server: the kit bounds attempts itself and writes a dead letter;
        # a server-side limit would strand the event silently.
        max_deliver=-1,
        # Alert lane: one event at a time, in order, over every process; an alert waits only
        # for the alert planned before it. Normal lane: several notices at once, each
        # notice's events in order within a process (Fanout), so a 100,000-recipient
        # notice throttled by the workers' pace does not hold every other one back.
        max_ack_pending=max_ack_pending if lane is Lane.NORMAL else 1,
    )


def worker_consumer(name: str, ack_wait_s: float, max_ack_pending: int,
                    lane: Lane = Lane.NORMAL) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable(name, "worker", lane),
        description=f"{name}: jobs to send ({lane} lane)",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        filter_subject=(subjects.channel_alert_jobs(name) if lane is Lane.ALERT
                        else subjects.channel_jobs(name)),
        # Short enough that a killed worker's jobs come back soon; a slow send is kept
        # alive by in-progress acks every ack_wait/3, so it is never sent twice.
        ack_wait=ack_wait_s,
        max_deliver=-1,
        # Jobs out at once over every process sharing the queue: bounds the redeliveries
        # after a crash and the memory of each worker. Each lane has its own: jobs held in
        # the normal lane (quiet hours, Retry-After) never fill the alert lane's.
        max_ack_pending=max_ack_pending,
    )


async def ensure_consumers(js: JetStreamContext, configs: Sequence[ConsumerConfig],
                           name: str) -> None:
    """The lanes' durables, made in an order that loses nothing, and older layouts upgraded.

    - `<name>-worker` made before lanes existed reads `jobs.<name>.>`, which overlaps the
      alert lane (a work queue refuses overlapping consumers): its filter is narrowed in
      place to `jobs.<name>.*` (nats-server 2.10+), keeping its queued and pending jobs,
      before the alert worker is made.
    - `<name>-fanout` made with another window (max_ack_pending: 1 before notices were
      planned side by side) gets the configured one, in place.
    - `<name>-alert-fanout` is made after `<name>-fanout`, starting just after the last
      event that one finished: an alert the normal lane skipped is one the alert lane
      reads (an event read by both is planned once: jobs carry a Nats-Msg-Id).
    - A fan-out durable that was lost is made again from its kept place (`_make_fanout`),
      never from NEW: no notice published while it was missing goes unplanned.
    """
    by_name = {c.durable_name: c for c in configs}
    fanout = by_name.get(durable(name, "fanout"))
    alert_fanout = by_name.get(durable(name, "fanout", Lane.ALERT))
    normal: ConsumerInfo | None = None
    if fanout is not None or alert_fanout is not None:
        try:
            normal = await js.consumer_info(NOTICES_STREAM, durable(name, "fanout"))
        except nats.js.errors.NotFoundError:
            normal = await _make_fanout(js, fanout or fanout_consumer(
                name, (alert_fanout.ack_wait if alert_fanout else None) or 30.0))
        else:
            if fanout is not None and normal.config.max_ack_pending != fanout.max_ack_pending:
                # One made before notices were planned side by side (1), or a setting changed.
                log.info("consumer_window_changed", consumer=fanout.durable_name,
                         was=normal.config.max_ack_pending, now=fanout.max_ack_pending)
                await js.add_consumer(NOTICES_STREAM, replace(
                    normal.config, max_ack_pending=fanout.max_ack_pending,
                    description=fanout.description))
    worker = by_name.get(durable(name, "worker"))
    if worker is not None:
        try:
            info = await js.consumer_info(JOBS_STREAM, durable(name, "worker"))
        except nats.js.errors.NotFoundError:
            await js.add_consumer(JOBS_STREAM, worker)
        else:
            if info.config.filter_subject != worker.filter_subject:
                log.info("consumer_filter_narrowed", consumer=worker.durable_name,
                         was=info.config.filter_subject, now=worker.filter_subject)
                await js.add_consumer(JOBS_STREAM, replace(
                    info.config, filter_subject=worker.filter_subject,
                    description=worker.description))
    if alert_fanout is not None and normal is not None:
        try:
            await js.consumer_info(NOTICES_STREAM, durable(name, "fanout", Lane.ALERT))
        except nats.js.errors.NotFoundError:
            floor = normal.ack_floor.stream_seq if normal.ack_floor else 0
            await _make_fanout(js, alert_fanout, floor)


def _resume_key(durable_name: str) -> str:
    """`<name>._resume.<durable>`: the channel's own keys in `sent` (its NATS user may write
    `$KV.sent.<name>.>`); no notice's key starts so, notice ids being [a-z0-9]."""
    owner = durable_name.removesuffix("-fanout").removesuffix("-alert")
    return f"{owner}._resume.{durable_name}"


async def _resume_place(kv: KeyValue, durable_name: str) -> int | None:
    try:
        entry = await kv.get(_resume_key(durable_name))
    except nats.js.errors.KeyNotFoundError:
        return None
    return int(entry.value or b"0")


async def _make_fanout(js: JetStreamContext, config: ConsumerConfig,
                       fallback: int | None = None) -> ConsumerInfo:
    """A missing fan-out durable, made to start after the last event its predecessor
    handled (kept in `sent`), else after `fallback`, else (a channel's very first start)
    from new events only; its place is written at once, so a durable lost before it
    handled anything still resumes from there."""
    kv = await js.key_value(SENT.name)
    name = config.durable_name or ""
    place = await _resume_place(kv, name)
    if place is not None:
        log.warning("consumer_resumed", consumer=name, after_stream_seq=place)
    else:
        place = fallback
    if place is not None:
        config = replace(config, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                         opt_start_seq=place + 1)
    info = await js.add_consumer(NOTICES_STREAM, config)
    made = info.ack_floor.stream_seq if info.ack_floor else 0
    await kv.put(_resume_key(name), str(place if place is not None else made).encode())
    return info


async def _note_place(js: JetStreamContext, sub: JetStreamContext.PullSubscription,
                      durable_name: str, kv: KeyValue | None, last: int,
                      info: ConsumerInfo | None = None) -> tuple[KeyValue | None, int]:
    """Keep a fan-out's ack floor (every event up to it fully planned) for `_make_fanout`.
    Events planned meanwhile (the window, an ack on its way) are after the floor: a
    re-created durable plans them again, and their jobs are deduplicated."""
    try:
        info = info or await sub.consumer_info()
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        if floor > last:
            kv = kv or await js.key_value(SENT.name)
            await kv.put(_resume_key(durable_name), str(floor).encode())
            last = floor
    except Exception as error:  # the next batch writes it; the events are planned anyway
        log.warning("consumer_place_not_kept", consumer=durable_name, error=repr(error)[:200])
    return kv, last


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
    # A fan-out (the kit's only durables on NOTICES) keeps its place for a re-creation.
    keeps_place = stream == NOTICES_STREAM
    places: KeyValue | None = None
    place = 0
    interrupted = False  # a stop cancelled a fetch
    while not stopping.is_set():
        try:
            if sub is None:
                await ensure()
                sub = await js.pull_subscribe(subject, durable=config.durable_name,
                                              stream=stream, config=config)
                bound.info("consumer_armed")
                if keeps_place:
                    # Its place from the start, before any event: a durable made by an
                    # older version, lost before its first event here, resumes too.
                    places, place = await _note_place(js, sub, config.durable_name or "",
                                                      places, 0)
                if armed is not None:
                    armed.set()
            try:
                msgs = await _fetch_or_stop(sub, batch, wait_s, stopping)
                if msgs is None:
                    interrupted = True
                    break
            except TimeoutError:
                # A quiet queue. nats-py says so with its own TimeoutError, or with
                # asyncio's plain one when the wait ran out between its two pull requests;
                # taken for a failure, that one logged a warning every few seconds of quiet
                # and paused the loop a second: jobs queued meanwhile waited up to 1 s.
                idle += 1
                if idle % 10 == 0:
                    # A quiet queue, or a consumer the server no longer has (restarted
                    # without its store)? A fetch cannot tell; the consumer's info can.
                    info = await sub.consumer_info()
                    if keeps_place:  # acks of notices planned side by side came since
                        places, place = await _note_place(
                            js, sub, config.durable_name or "", places, place, info)
                continue
            idle = 0
            await handle(msgs)
            if keeps_place:
                places, place = await _note_place(js, sub, config.durable_name or "",
                                                  places, place)
        except Exception as error:
            if stopping.is_set():
                break
            # Consumer or stream gone (a server restarted empty), the server away, or a
            # batch that could not be finished (its jobs come back after ack_wait): never
            # let the loop die, ask again shortly.
            bound.warning("pull_failed", error=repr(error)[:300])
            if sub is not None and not isinstance(error, nats.js.errors.NotFoundError):
                # A pull on a durable deleted under it fails otherwise (503 "no
                # responders"): only its info says it is gone and must be made again.
                error = await _gone(sub) or error
            if sub is not None and isinstance(error, nats.js.errors.NotFoundError):
                try:
                    await sub.unsubscribe()
                except nats.errors.Error:
                    pass
                sub = None
            await _sleep_or_stop(stopping, 1.0)
    if sub is not None:
        try:
            # What reached the queue while the stop cancelled a fetch: back to the server
            # now, for the next instance, rather than after ack_wait.
            for msg in natsx.take_queued(sub) if interrupted else []:
                await msg.nak()
            await sub.unsubscribe()
        except nats.errors.Error:
            pass


async def _fetch_or_stop(sub: JetStreamContext.PullSubscription, batch: int, wait_s: float,
                         stopping: asyncio.Event) -> list[Msg] | None:
    """The next batch (TimeoutError on a quiet queue), or None once `stopping` is set: a stop
    does not wait out the fetch's wait (a second at every shutdown of every channel)."""
    fetching = asyncio.ensure_future(sub.fetch(batch, timeout=wait_s))
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait((fetching, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not fetching.done():
            fetching.cancel()
    # Let a cancelled fetch end: nats-py may turn the cancel into its own error, or hand
    # over what came meanwhile (handled, as a batch that came with the stop always was).
    await asyncio.wait((fetching,))
    if fetching.cancelled():
        return None
    error = fetching.exception()
    if error is not None:
        if stopping.is_set():
            return None
        raise error
    return fetching.result()


async def _gone(sub: JetStreamContext.PullSubscription) -> Exception | None:
    try:
        await sub.consumer_info()
    except nats.js.errors.NotFoundError as error:
        return error
    except Exception:  # the server away: the next attempt asks again
        return None
    return None


async def _sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        pass
