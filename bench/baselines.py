"""Raw baselines, measured in the same run on the same machine: what the plumbing could do."""

from __future__ import annotations

import asyncio
import time

import nats
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig


async def nats_publish_and_fetch(url: str, n: int) -> dict[str, float]:
    """JetStream publish_async + completed, then pull fetch(500) + ack: messages per second."""
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=4000)
    await js.add_stream(StreamConfig(name="BENCH", subjects=["bench.>"],
                                     storage=StorageType.FILE,
                                     retention=RetentionPolicy.WORK_QUEUE))
    payload = b'{"schema_version":1,"channel":"email","commune":"70299",' \
              b'"notice_id":"0123456789abcdef","version":1,"kind":"published",' \
              b'"recipient":"' + b"x" * 43 + b'"}'
    start = time.perf_counter()
    for i in range(n):
        await js.publish_async("bench.jobs", payload, headers={"Nats-Msg-Id": f"b{i}"})
    await js.publish_async_completed()
    publish_s = time.perf_counter() - start
    sub = await js.pull_subscribe("bench.jobs", durable="bench", stream="BENCH",
                                  config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                                        max_ack_pending=10_000))
    got = 0
    start = time.perf_counter()
    while got < n:
        for msg in await sub.fetch(500, timeout=5):
            await msg.ack()
            got += 1
    await nc.flush()
    fetch_s = time.perf_counter() - start
    await js.delete_stream("BENCH")
    await nc.close()
    return {"nats_publish_async_msg_per_s": n / publish_s,
            "nats_pull_fetch_ack_msg_per_s": n / fetch_s}


async def smtp_loop(host: str, port: int, pool: int, n: int, message: bytes) -> float:
    """Raw aiosmtplib: `pool` persistent connections share `n` sends; sends per second."""
    import aiosmtplib  # the email channel's dependency

    counter = iter(range(n))

    async def connection() -> None:
        smtp = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False, use_tls=False)
        await smtp.connect()
        try:
            for i in counter:
                await smtp.sendmail("mairie@crieur.localhost", [f"r{i}@example.org"], message)
        finally:
            await smtp.quit()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(pool)))
    return n / (time.perf_counter() - start)
