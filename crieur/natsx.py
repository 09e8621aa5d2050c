"""nats-py where Crieur goes past its public API (nats-py 2.16): every private attribute it
reads and every nats-py behaviour it works around as a function, each with the nats.py
issue behind it. tests/unit/test_natsx.py fails when another module reads a private
attribute of a library object, so a new one lands here, next to its reason.

Worked around where the algorithm needs it (too entangled to be a function here); each of
those comments names its issue too:
- `publish_async` never resolves its future when JetStream answers an error
  (nats-io/nats.py#985): crieur.channel.sent.publish_patiently awaits `publish` instead.
- `KeyValue.watch` may say "initial values all in" (None) before them (nats-io/nats.py#842):
  crieur.channel.recipients trusts that None only for a bucket empty when the watch began,
  and crieur.channel.sent.SentRecords.recipients reads with an ordered consumer of its own.
- The KV watcher's ordered consumer has a fixed 5 s idle heartbeat, so it resumes 10 to
  20 s after nats-server comes back (no nats.py issue found; nats-io/nats.go#1255 asks the
  same of Go): crieur.mirror follows a bucket with its own consumer (bus.IDLE_HEARTBEAT_S).
- A request cancelled mid-way becomes nats-py's own error, so the cancellation is lost
  (nats-io/nats.py#373): crieur.tasks.Supervisor.stop cancels until every task has ended.
- A pull subscription keeps the messages that arrive after a fetch returned in its queue,
  where no in-progress ack reaches them, and the next fetch hands them out with their
  redelivery (no nats.py issue found): crieur.channel.worker keeps one copy of a job.
"""

from __future__ import annotations

import asyncio
import json

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NoKeysError
from nats.js.kv import KeyValue

# KeyValue keeps its bucket's name, its stream and its JetStream context private, and a
# JetStreamContext its connection (no nats.py issue found asks for accessors). A bucket is
# the stream KV_<name>, with one subject $KV.<name>.<key> per key (ADR-8).


def bucket_name(kv: KeyValue) -> str:
    """The bucket's name, as its subjects `$KV.<name>.<key>` spell it."""
    name: str = kv._name
    return name


def bucket_stream(kv: KeyValue) -> str:
    """The stream that holds the bucket (`KV_<name>`)."""
    stream: str = kv._stream
    return stream


def bucket_context(kv: KeyValue) -> JetStreamContext:
    """The JetStream context the bucket was opened with (its stream's info, subscriptions)."""
    js: JetStreamContext = kv._js
    return js


def connection(js: JetStreamContext) -> Client:
    """The connection under a JetStream context (for requests nats-py has no API for)."""
    nc: Client = js._nc
    return nc


def take_queued(sub: JetStreamContext.PullSubscription) -> list[Msg]:
    """The messages a pull subscription holds in its queue, taken out of it (status messages
    dropped). A fetch cancelled mid-way (a stop) leaves there those that arrived meanwhile,
    and nats-py has no public way to read them without asking the server for more (no
    nats.py issue found): unsubscribing would drop them unacknowledged until ack_wait."""
    inner = sub._sub
    found = []
    while not inner._pending_queue.empty():
        msg: Msg = inner._pending_queue.get_nowait()
        inner._pending_size -= len(msg.data)
        if not JetStreamContext.is_status_msg(msg):
            found.append(msg)
    return found


async def bucket_keys(kv: KeyValue) -> list[str]:
    """Every live key of a bucket; [] only when asking again still finds none.

    nats-py's keys() raises NoKeysError for an empty bucket (nats-io/nats.py#582, kept as
    it is), and also for a bucket that holds keys when its watcher says nothing is pending
    before its first entries were counted (nats-io/nats.py#842: `crieur commune list`
    printed nothing twice under a loaded CI run). So an empty answer is checked against
    the bucket's count, and asked again.
    """
    for attempt in range(3):
        try:
            return list(await kv.keys())
        except NoKeysError:
            if (await kv.status()).values == 0:
                return []
            await asyncio.sleep(0.2 * (attempt + 1))
    return []


# JetStream's batched direct get (`multi_last`, ADR-31, nats-server 2.11): the last message
# of many subjects in one round trip. nats-py has no API for it (the other clients added
# theirs: nats-io/nats.net#636, nats-io/nats.java#1229); the server allows 1,024 subjects
# a request, this many are named in one.
MULTI_LAST_MAX = 500


async def multi_last(nc: Client, stream: str, subjects: list[str],
                     wait_s: float = 5.0) -> list[Msg]:
    """The last message of each of `subjects` that has one (at most MULTI_LAST_MAX);
    raises nats.errors.Error if the server answers an error, TimeoutError if it is silent.
    Each message's `Nats-Subject` header names its subject."""
    if not subjects:
        return []
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    found: list[Msg] = []
    try:
        request = {"multi_last": subjects, "batch": len(subjects)}
        await nc.publish(f"$JS.API.DIRECT.GET.{stream}", json.dumps(request).encode(),
                         reply=inbox)
        while True:
            msg = await sub.next_msg(timeout=wait_s)
            headers = msg.headers or {}
            status = headers.get("Status")
            if status in ("204", "404"):  # end of batch; none of them has a message
                return found
            if status is not None:
                raise nats.errors.Error(f"direct get: {status} "
                                        f"{headers.get('Description', '')}")
            found.append(msg)
    finally:
        await sub.unsubscribe()
