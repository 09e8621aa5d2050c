"""CRIEUR_ENSURE_STREAMS=false: a service checks that what it needs exists, and shapes nothing."""

from __future__ import annotations

import uuid

import nats
import pytest
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from crieur.bus import NotProvisionedError, ensure_bucket, ensure_stream, servers
from schemas.streams import Bucket

pytestmark = pytest.mark.integration


async def test_with_ensuring_off_nothing_is_created_or_updated(
        nats_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"SWITCH_{uuid.uuid4().hex[:8].upper()}"
    v1 = StreamConfig(name=name, subjects=[f"{name.lower()}.>"], metadata={"crieur_config": "1"},
                      max_age=60.0)
    v2 = StreamConfig(name=name, subjects=[f"{name.lower()}.>"], metadata={"crieur_config": "2"},
                      max_age=120.0)
    bucket = Bucket(f"switch_{uuid.uuid4().hex[:8]}", "test")
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        monkeypatch.setenv("CRIEUR_ENSURE_STREAMS", "false")
        with pytest.raises(NotProvisionedError, match="crieur provision"):
            await ensure_stream(js, v1)
        with pytest.raises(NotFoundError):
            await js.stream_info(name)
        with pytest.raises(NotProvisionedError, match="crieur provision"):
            await ensure_bucket(js, bucket)
        with pytest.raises(NotFoundError):
            await js.stream_info(f"KV_{bucket.name}")
        # Provisioned (here by hand, at v1): a newer service's definition changes nothing.
        await js.add_stream(config=v1)
        await ensure_stream(js, v2)
        assert (await js.stream_info(name)).config.max_age == 60.0
        # The development default: the service brings it up to its definition.
        monkeypatch.setenv("CRIEUR_ENSURE_STREAMS", "true")
        await ensure_stream(js, v2)
        assert (await js.stream_info(name)).config.max_age == 120.0
        await js.delete_stream(name)
    finally:
        await nc.close()


def test_a_cluster_url_is_every_node() -> None:
    assert servers("tls://a:1@n1:4222, tls://a:1@n2:4222,tls://a:1@n3:4222") == [
        "tls://a:1@n1:4222", "tls://a:1@n2:4222", "tls://a:1@n3:4222"]
    assert servers("nats://127.0.0.1:4222") == ["nats://127.0.0.1:4222"]
