"""Connecting to NATS and ensuring the streams and buckets of `schemas.streams`."""

from __future__ import annotations

from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue

from schemas.streams import BUCKETS, STREAMS, Bucket

log = structlog.get_logger("crieur.bus")


async def _log_error(error: Exception) -> None:
    # nats-py's default prints a traceback per failed attempt; one line says as much.
    log.warning("nats_error", error=repr(error))


async def _log_disconnected() -> None:
    log.warning("nats_disconnected")


async def _log_reconnected() -> None:
    log.info("nats_reconnected")


# nats-py gives up after 60 reconnect attempts by default; a village sign or a channel
# must keep trying for as long as the server is away, however long that is, including
# when it starts before the server does.
RECONNECT_FOREVER: dict[str, Any] = {
    "max_reconnect_attempts": -1,
    "reconnect_time_wait": 1,
    "connect_timeout": 5,
    "error_cb": _log_error,
    "disconnected_cb": _log_disconnected,
    "reconnected_cb": _log_reconnected,
}

# A command run by hand fails fast and says so, rather than waiting for a server.
TRY_ONCE: dict[str, Any] = {
    # For nats-py 0 means forever; 1 means one retry, then NoServersError.
    "max_reconnect_attempts": 1,
    "allow_reconnect": False,
    "connect_timeout": 3,
    "error_cb": _log_error,
}


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create or update one stream; safe to call at every start."""
    try:
        await js.add_stream(config=config)
    except BadRequestError:
        # Same name, other settings (an older release): bring it to the current definition.
        await js.update_stream(config=config)


async def ensure_streams(js: JetStreamContext) -> None:
    """Create or update every stream; safe to call from every service at every start."""
    for config in STREAMS:
        await ensure_stream(js, config)


async def ensure_bucket(js: JetStreamContext, bucket: Bucket) -> KeyValue:
    try:
        return await js.create_key_value(config=bucket.config())
    except BadRequestError:
        return await js.key_value(bucket.name)


async def ensure_all(js: JetStreamContext) -> dict[str, KeyValue]:
    await ensure_streams(js)
    return {b.name: await ensure_bucket(js, b) for b in BUCKETS}
