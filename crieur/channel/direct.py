"""JetStream's batched direct get (`multi_last`): the last message of many subjects in one
round trip. nats-py has no API for it yet; the server allows 1,024 subjects a request."""

from __future__ import annotations

import json

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

# Subjects named in one request (the server's limit is 1,024).
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
