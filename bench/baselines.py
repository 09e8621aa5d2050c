"""Raw baselines, measured in the same run on the same machine: what the plumbing could do."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any
from urllib.parse import urlsplit

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


async def sms_http_loop(base_url: str, concurrency: int, bodies: list[bytes]) -> float:
    """Raw httpx: `concurrency` tasks on one client of as many keep-alive connections (as
    the SMS service's Brevo client), posting prebuilt bodies to the SMS stand-in; sends
    per second. Every answer must be the 201 of an accepted message."""
    import httpx  # the SMS channel's HTTP client

    todo = iter(bodies)
    refused = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def sender() -> None:
            nonlocal refused
            for body in todo:
                answer = await client.post(
                    "/v3/transactionalSMS/send", content=body,
                    headers={"api-key": "standin", "accept": "application/json",
                             "content-type": "application/json"})
                refused += answer.status_code != 201

        start = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    if refused:
        raise RuntimeError(f"the SMS stand-in refused {refused} raw sends")
    return len(bodies) / elapsed


def _in_a_process(kind: str, args: tuple[object, ...], start_at: float) -> float:
    """One raw loop in a process of its own, from a wall-clock instant shared with the other."""
    time.sleep(max(0.0, start_at - time.time()))
    if kind == "smtp":
        return asyncio.run(smtp_loop(*args))  # type: ignore[arg-type]
    return asyncio.run(sms_http_loop(*args))  # type: ignore[arg-type]


async def smtp_and_sms_at_once(smtp: tuple[str, int, int, int, bytes],
                               sms: tuple[str, int, list[bytes]]) -> dict[str, float]:
    """Raw aiosmtplib and raw httpx at the same time, each in its own process (as the email
    and SMS services are), started together: each one's sends per second while the other
    loads the same machine, as the pipeline's email and SMS runs load each other."""
    loop = asyncio.get_running_loop()
    # fork: the children only run a fresh event loop over what they are given.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        start_at = time.time() + 1.0
        email, text = await asyncio.gather(
            loop.run_in_executor(pool, _in_a_process, "smtp", smtp, start_at),
            loop.run_in_executor(pool, _in_a_process, "sms", sms, start_at))
    return {"email": email, "sms": text}


async def webpush_loop(subscriptions: list[dict[str, Any]], payload: bytes,
                       concurrency: int) -> float:
    """Raw Web Push: what a pywebpush loop does, with the primitives pywebpush itself is
    built on and the Web Push service uses (http-ece, py-vapid, httpx): each message
    encrypted for its browser (aes128gcm, a new ephemeral key each), a VAPID header, one
    POST; `concurrency` tasks on one client of as many keep-alive connections. The VAPID
    token is signed once and reused, as the service does (pywebpush's `webpush()` signs
    one per call: a stricter baseline). Sends per second; every answer must be a 201."""
    import http_ece  # the Web Push channel's own primitives
    import httpx
    from cryptography.hazmat.primitives.asymmetric import ec
    from py_vapid import Vapid02

    from services.webpush.subscriptions import b64decode

    vapid = Vapid02()
    vapid.generate_keys()
    url = urlsplit(subscriptions[0]["endpoint"])
    audience = f"{url.scheme}://{url.netloc}"
    authorization = vapid.sign({"sub": "mailto:bench@crieur.localhost", "aud": audience,
                                "exp": int(time.time()) + 12 * 3600})["Authorization"]
    todo = iter(subscriptions)
    refused = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def sender() -> None:
            nonlocal refused
            for browser in todo:
                body = http_ece.encrypt(
                    payload, private_key=ec.generate_private_key(ec.SECP256R1()),
                    dh=b64decode(browser["keys"]["p256dh"]),
                    auth_secret=b64decode(browser["keys"]["auth"]), version="aes128gcm")
                answer = await client.post(browser["endpoint"], content=body, headers={
                    "TTL": "86400", "Urgency": "high", "Topic": "bench",
                    "Content-Encoding": "aes128gcm",
                    "Content-Type": "application/octet-stream",
                    "Authorization": authorization})
                refused += answer.status_code != 201

        start = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    if refused:
        raise RuntimeError(f"the Web Push stand-in refused {refused} raw sends")
    return len(subscriptions) / elapsed
