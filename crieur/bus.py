"""Connecting to NATS and ensuring the streams and buckets of `schemas.streams`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import nats
import structlog
from nats import errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, ConsumerInfo, StreamConfig
from nats.js.errors import (
    APIError,
    BadRequestError,
    BucketNotFoundError,
    NotFoundError,
)
from nats.js.kv import KeyValue
from nats.js.manager import JetStreamManager
from nats.nuid import NUID
from pydantic import ValidationError

from crieur.settings import CommonSettings
from schemas.streams import BUCKETS, CONFIG_VERSION_KEY, STREAMS, Bucket

log = structlog.get_logger("crieur.bus")


def servers(url: str) -> list[str]:
    """CRIEUR_NATS_URL as nats-py's server list: several URLs, comma-separated, for a cluster.

    Each URL carries its credentials: nats-py connects to the servers a cluster announces
    without any, so a service must be given every node to reconnect to another one.
    """
    return [part.strip() for part in url.split(",") if part.strip()]


class Outage:
    """One line when the connection to NATS is lost, one when it is back.

    While nats-server is away every reconnect attempt fails (once a second), and every
    request and consumer re-creation in flight times out: logged one by one, that was
    hundreds of lines per service for a restart of a few seconds. During an outage those
    errors are counted, and the count is said once the connection is back.
    """

    # What a server that went away causes; anything else (a permission refused, a slow
    # consumer) is logged as it comes, outage or not.
    LOST: tuple[type[BaseException], ...] = (
        OSError, asyncio.TimeoutError, errors.StaleConnectionError,
        errors.ConnectionClosedError, errors.NoServersError,
        errors.ConnectionReconnectingError)

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.since: float | None = None
        self.errors = 0

    def begin(self, error: BaseException | None = None) -> None:
        if self.since is not None:
            return
        self.since, self.errors = self.clock(), 0
        if error is None:
            log.warning("nats_disconnected")
        else:
            log.warning("nats_disconnected", error=repr(error))

    def end(self, event: str = "nats_reconnected") -> None:
        if self.since is None:
            return
        log.info(event, outage_s=round(self.clock() - self.since, 1),
                 errors_while_away=self.errors)
        self.since = None

    async def on_error(self, error: Exception) -> None:
        if isinstance(error, self.LOST):
            if self.since is None and not isinstance(error, asyncio.TimeoutError):
                self.begin(error)
                return
            if self.since is not None:
                self.errors += 1
                return
        # nats-py's default prints a traceback per error; one line says as much.
        log.warning("nats_error", error=repr(error))

    async def on_disconnected(self) -> None:
        self.begin()

    async def on_reconnected(self) -> None:
        self.end()


# One per process: a process keeps one NATS identity, and its connections share a fate.
OUTAGE = Outage()


async def connect(url: str, name: str | None = None,
                  options: Mapping[str, Any] | None = None) -> NATS:
    """nats.connect to CRIEUR_NATS_URL's servers (RECONNECT_FOREVER unless `options`).

    nats-py calls no callback when a first connection succeeds after failed attempts, so
    the end of that outage is said here.
    """
    nc = await nats.connect(servers(url), name=name, **(options or RECONNECT_FOREVER))
    OUTAGE.end("nats_connected")
    return nc


class LibraryConnectionLines(logging.Filter):
    """Drops a library's own line per connection error (FastStream's "Connection broken",
    with a traceback, once per reconnect attempt): `Outage` says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Connection broken", "Connection established"))


# An ordered consumer (every subscription that follows a stream or a bucket) is recreated
# when two heartbeats in a row are missed: 1 s means it resumes within about 2 to 4 s
# once nats-server is back after a restart. nats-py's default of 5 s made it 10 to 20 s.
IDLE_HEARTBEAT_S = 1.0

# nats-py gives up after 60 reconnect attempts by default; a village sign or a channel
# must keep trying for as long as the server is away, however long that is, including
# when it starts before the server does.
RECONNECT_FOREVER: dict[str, Any] = {
    "max_reconnect_attempts": -1,
    "reconnect_time_wait": 1,
    "connect_timeout": 5,
    # A connection that died without a word (a cable, a NAT) is noticed in about 20 s
    # instead of the default 4 minutes.
    "ping_interval": 10,
    "max_outstanding_pings": 2,
    "error_cb": OUTAGE.on_error,
    "disconnected_cb": OUTAGE.on_disconnected,
    "reconnected_cb": OUTAGE.on_reconnected,
}


def _inbox_prefix() -> str:
    try:
        return CommonSettings().nats_inbox_prefix
    except ValidationError:
        # Settings refused (a NATS URL the client cannot read): the service says so in one
        # line when it loads its own, which an import error here would drown in a traceback.
        return str(CommonSettings.model_fields["nats_inbox_prefix"].default)


# Read once, at start: a process keeps one NATS identity for its whole life.
INBOX_PREFIX = _inbox_prefix()
RECONNECT_FOREVER["inbox_prefix"] = INBOX_PREFIX

# Ephemeral consumers (ordered consumers, nats-py's KV watches and object-store reads, an
# ordered consumer remade after a gap) are created by name, `<user>_<unique>`: the unnamed
# `$JS.API.CONSUMER.CREATE.<stream>` also takes a `name` in its body, so a user allowed it
# could rewrite any consumer of that stream, another service's durable included.
# deploy/nats/auth.conf allows the named create alone and refuses the others' durables'
# names (issue 25). nats-py names nothing itself and builds these consumers deep inside
# (KeyValue.watch, ObjectStore.get, the ordered reset), so its one creation call is wrapped.
EPHEMERAL_PREFIX = INBOX_PREFIX.removeprefix("_INBOX").strip("_") or "crieur"
_nuid = NUID()
_add_consumer = JetStreamManager.add_consumer


async def _add_named_consumer(self: JetStreamManager, stream: str,
                              config: ConsumerConfig | None = None,
                              timeout: float | None = None,  # noqa: ASYNC109 (nats-py's signature)
                              **params: Any) -> ConsumerInfo:
    config = (config or ConsumerConfig()).evolve(**params)
    if not config.name and not config.durable_name:
        # A fresh name at each creation: a remade ordered consumer must not meet its
        # predecessor (still there until its inactivity threshold) under the same name.
        config = config.evolve(name=f"{EPHEMERAL_PREFIX}_{_nuid.next().decode()}")
    return await _add_consumer(self, stream, config, timeout)


JetStreamManager.add_consumer = _add_named_consumer  # type: ignore[method-assign]

# A command run by hand fails fast and says so, rather than waiting for a server.
TRY_ONCE: dict[str, Any] = {
    # For nats-py 0 means forever; 1 means one retry, then NoServersError.
    "max_reconnect_attempts": 1,
    "allow_reconnect": False,
    "connect_timeout": 3,
    "error_cb": OUTAGE.on_error,
    "inbox_prefix": INBOX_PREFIX,
}


class NotProvisionedError(RuntimeError):
    """A stream or bucket is missing and this service may not create it (production)."""


# JetStream's error code for a write refused because the stream or bucket reached its
# max_bytes (schemas.streams.Bucket.max_bytes); nats-py raises it as a 503.
MAXIMUM_BYTES_EXCEEDED = 10077


def is_full(error: BaseException) -> bool:
    """The write was refused because its bucket or stream is full (not a passing outage)."""
    return isinstance(error, APIError) and (
        error.err_code == MAXIMUM_BYTES_EXCEEDED
        or "maximum bytes exceeded" in (error.description or ""))


def ensuring() -> bool:
    """False when streams and buckets are `crieur provision`'s alone (CRIEUR_ENSURE_STREAMS)."""
    return CommonSettings().ensure_streams


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or bring an older one to `config`; never downgrade a newer one.

    Safe to call at every start. The definition's version is its `crieur_config` metadata
    (schemas.streams): a stream configured by a newer build (a higher version) is left as
    it is, and so is one at the same version (it was configured on purpose). A definition
    without a version counts as 0: created if missing, never used to update a stream.
    """
    name = config.name or ""
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        if not ensuring():
            raise NotProvisionedError(
                f"stream {name} does not exist: run `crieur provision`") from None
        try:
            await js.add_stream(config=config)
            log.info("stream_created", stream=name, config_version=config_version(config))
            return
        except BadRequestError:
            info = await js.stream_info(name)  # another service created it meanwhile
    ours, theirs = config_version(config), config_version(info.config)
    if not ensuring():
        # Production: the provisioning step owns the definition; say when it lags behind.
        if theirs < ours:
            log.warning("stream_older_config", stream=name, ours=ours, theirs=theirs,
                        hint="run `crieur provision`")
        return
    if theirs >= ours:
        if theirs > ours:
            log.info("stream_newer_config_kept", stream=name, ours=ours, theirs=theirs)
        return
    # An older definition: update only what our definition says, keep the rest as it is.
    await js.update_stream(config=config)
    log.info("stream_updated", stream=name, from_version=theirs, to_version=ours)


def config_version(config: StreamConfig) -> int:
    """The version of a stream definition (0: written before definitions had one)."""
    value = (config.metadata or {}).get(CONFIG_VERSION_KEY, "0")
    return int(value) if value.isdigit() else 0


async def ensure_streams(js: JetStreamContext, streams: Iterable[StreamConfig] = STREAMS) -> None:
    """Ensure `streams` (a service passes the ones it owns or writes to)."""
    for config in streams:
        await ensure_stream(js, config)


async def ensure_bucket(js: JetStreamContext, bucket: Bucket) -> KeyValue:
    """Create the bucket, or open it as it is (an existing bucket is never reconfigured)."""
    try:
        return await js.key_value(bucket.name)
    except BucketNotFoundError:
        if not ensuring():
            raise NotProvisionedError(
                f"bucket {bucket.name} does not exist: run `crieur provision`") from None
    try:
        return await js.create_key_value(config=bucket.config())
    except BadRequestError:
        return await js.key_value(bucket.name)


async def ensure_all(
    js: JetStreamContext,
    streams: Iterable[StreamConfig] = STREAMS,
    buckets: Iterable[Bucket] = BUCKETS,
) -> dict[str, KeyValue]:
    await ensure_streams(js, streams)
    return {b.name: await ensure_bucket(js, b) for b in buckets}
