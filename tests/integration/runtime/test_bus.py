"""Streams and buckets as services ensure them, and bucket mirrors, on a real nats-server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import StreamConfig

from crieur.bus import config_version, ensure_bucket, ensure_stream, ensure_streams
from crieur.mirror import BucketMirror
from schemas import subjects
from schemas.commune import Commune
from schemas.deadletters import DeadLetter
from schemas.streams import CONFIG_VERSION_KEY, DEADLETTERS, Bucket
from tests.helpers import eventually, read_subject

pytestmark = pytest.mark.integration


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


def definition(name: str, version: int, max_age: float) -> StreamConfig:
    return StreamConfig(name=name, subjects=[f"{name.lower()}.>"], max_age=max_age,
                        metadata={CONFIG_VERSION_KEY: str(version)})


async def test_an_older_build_never_downgrades_a_stream_a_newer_one_configured(
    nc: Client,
) -> None:
    js = nc.jetstream()
    name = "T" + secrets.token_hex(4).upper()
    await ensure_stream(js, definition(name, 2, max_age=3600.0))  # the newer build
    await ensure_stream(js, definition(name, 1, max_age=60.0))  # an older one starts later
    info = await js.stream_info(name)
    assert info.config.max_age == 3600.0 and config_version(info.config) == 2
    await js.delete_stream(name)


async def test_a_stream_of_an_older_definition_is_brought_up_to_date(nc: Client) -> None:
    js = nc.jetstream()
    name = "T" + secrets.token_hex(4).upper()
    old = dataclasses.replace(definition(name, 0, max_age=60.0), metadata=None)
    await js.add_stream(config=old)  # created before definitions had a version
    await ensure_stream(js, definition(name, 1, max_age=3600.0))
    info = await js.stream_info(name)
    assert info.config.max_age == 3600.0 and config_version(info.config) == 1
    # Same version again: nothing to do, and nothing changes.
    await ensure_stream(js, definition(name, 1, max_age=5.0))
    assert (await js.stream_info(name)).config.max_age == 3600.0
    await js.delete_stream(name)


async def test_a_mirror_reads_new_fields_and_sets_aside_a_newer_version(nc: Client) -> None:
    js = nc.jetstream()
    await ensure_streams(js, (DEADLETTERS,))
    bucket = Bucket("t" + secrets.token_hex(4), "a test bucket")
    kv = await ensure_bucket(js, bucket)
    good = {"insee": "70299", "name": "Lavoncourt", "created_at": "2026-01-01T00:00:00Z",
            "founded": 1100}
    await kv.put("70299", json.dumps(good).encode())
    service = "test-" + bucket.name
    mirror = BucketMirror(kv, Commune, service=service)
    await mirror.start()
    try:
        assert mirror.values["70299"].name == "Lavoncourt", "loaded before start() returns"
        newer = good | {"schema_version": 2, "name": {"fr": "Lavoncourt"}}
        await kv.put("70299", json.dumps(newer).encode())
        found: list[DeadLetter] = []
        async with asyncio.timeout(30):
            while not found:
                messages = await read_subject(js, subjects.dead_letter(service), wait_s=0.3)
                found = [DeadLetter.model_validate_json(m.data) for m in messages]
        assert found[0].subject == f"$KV.{bucket.name}.70299"
        assert "schema_version 2" in found[0].reason
        assert mirror.values["70299"].name == "Lavoncourt", "it keeps what it could read"
        await kv.delete("70299")
        await eventually(lambda: "70299" not in mirror.values, "a deleted key leaves")
    finally:
        await mirror.stop()
        await js.delete_key_value(bucket.name)
