"""Subscriber buckets have a size limit: made with it by `ensure_bucket` and by provisioning
(which also gives it to a bucket made before it had one), and a write the full bucket
refuses is a 507 that says so, never a 500, while leaving still works."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import nats
import pytest
from nats.js.api import KeyValueConfig

from crieur.bus import ensure_bucket
from crieur.channel.http_bridge import Request, Router
from crieur.provision import provision_bucket
from schemas.buckets import EMAIL_SUBSCRIBERS, PUSH_DEVICES, SMS_SUBSCRIBERS
from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from schemas.streams import Bucket
from services.email.subscribers import Registry, Subscriber

pytestmark = pytest.mark.integration


def test_every_subscriber_bucket_has_a_limit() -> None:
    for bucket in (EMAIL_SUBSCRIBERS, SMS_SUBSCRIBERS, PUSH_DEVICES):
        assert bucket.max_bytes >= 100_000 * 1_000, bucket.name  # 100,000 of 1 KB at least
        assert bucket.config().max_bytes == bucket.max_bytes


async def test_ensure_and_provisioning_apply_the_limit(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    ensured = Bucket(f"limit_{uuid.uuid4().hex[:8]}", "test", max_bytes=64 * 1024)
    old = Bucket(f"limit_{uuid.uuid4().hex[:8]}", "test", max_bytes=32 * 1024)
    try:
        await ensure_bucket(js, ensured)
        assert (await js.stream_info(f"KV_{ensured.name}")).config.max_bytes == 64 * 1024
        # Made by an older release, without a limit: provisioning gives it one.
        await js.create_key_value(config=KeyValueConfig(bucket=old.name))
        assert (await js.stream_info(f"KV_{old.name}")).config.max_bytes in (None, -1)
        said = await provision_bucket(js, old, 1)
        assert said == f"bucket {old.name}: replicas 1, at most {32 * 1024} bytes"
        assert (await js.stream_info(f"KV_{old.name}")).config.max_bytes == 32 * 1024
        assert await provision_bucket(js, old, 1) == f"bucket {old.name}: exists (replicas 1)"
    finally:
        for name in (ensured.name, old.name):
            await js.delete_key_value(name)
        await nc.close()


async def test_a_full_bucket_answers_507_and_still_lets_people_leave(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    tiny = Bucket(f"full_{uuid.uuid4().hex[:8]}", "test", max_bytes=4 * 1024)
    try:
        registry = Registry(await ensure_bucket(js, tiny))
        now = datetime.now(UTC)
        router = Router()
        written: list[str] = []

        @router.route("POST", "/subscriptions")
        async def subscribe(request: Request) -> ChannelHttpReply:
            rid = uuid.uuid4().hex
            await registry.put(rid, Subscriber(email=f"{rid}@example.org", created_at=now))
            written.append(rid)
            return ChannelHttpReply(status=202, headers={}, body="{}")

        replies = []
        for _ in range(200):
            replies.append(await router.dispatch(
                ChannelHttpRequest(method="POST", path="/subscriptions")))
            if replies[-1].status != 202:
                break
        assert 0 < len(written) < 200, "the bucket took some, then was full"
        refused = replies[-1]
        assert refused.status == 507, refused
        assert "storage_full" in refused.body and "réessayez plus tard" in refused.body
        # Leaving is a purge, which a full bucket still takes.
        await registry.forget(written[0])
        assert await registry.get(written[0]) is None
    finally:
        await js.delete_key_value(tiny.name)
        await nc.close()
