"""The phones that follow communes: a NATS KV bucket the push service owns.

A device is an FCM registration token and what it follows; no account, no email, no
phone number. The token is kept only here (logs show a hash of it). The bucket's key is
the SHA-256 of the token, so a token never appears in a subject either.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from crieur.bus import ensure_bucket
from crieur.natsx import bucket_keys
from schemas.buckets import PUSH_DEVICES
from schemas.commune import Insee
from schemas.notice import Category
from services.push import format

DEVICES = PUSH_DEVICES

# FCM allows an app instance at most this many topics.
MAX_TOPICS = 2000

# FCM registration tokens: URL-safe base64 with ':' (e.g. "cXy...:APA91b..."), ~150-200 long.
TOKEN = re.compile(r"^[A-Za-z0-9_\-:.]{20,4096}$")

Token = Annotated[str, StringConstraints(pattern=TOKEN.pattern)]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]


class Platform(StrEnum):
    ANDROID = "android"
    IOS = "ios"
    WEB = "web"


class Follow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    commune: Insee
    # Absent: every category.
    categories: tuple[Category, ...] = Field(default=tuple(Category), min_length=1,
                                             max_length=len(Category))


class Following(BaseModel):
    """What a phone asks to follow (the body of PUT, and part of POST): checked strictly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    follows: tuple[Follow, ...] = Field(max_length=MAX_TOPICS)
    platform: Platform | None = None
    # The phone's language (BCP 47, e.g. fr, fr-FR); notices are sent in French for now.
    language: Language | None = None

    @field_validator("follows")
    @classmethod
    def _few_enough_topics(cls, follows: tuple[Follow, ...]) -> tuple[Follow, ...]:
        if len(topics_of(follows)) > MAX_TOPICS:
            raise ValueError(f"at most {MAX_TOPICS} topics (commune × category) per phone")
        return follows


class Registration(Following):
    """The body of POST /api/v1/devices."""

    token: Token
    platform: Platform | None = Platform.ANDROID
    language: Language | None = "fr"


class Device(BaseModel):
    """A stored phone (read tolerantly: a newer service may have added fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = 1
    token: str
    follows: tuple[Follow, ...]
    platform: Platform = Platform.ANDROID
    language: str = "fr"
    # The topics FCM was told this phone follows (what to unsubscribe from later).
    topics: tuple[str, ...] = ()
    created_at: datetime
    updated_at: datetime

    @property
    def wanted(self) -> tuple[str, ...]:
        return topics_of(self.follows)


def topics_of(follows: tuple[Follow, ...]) -> tuple[str, ...]:
    found = dict.fromkeys(format.topic(f.commune, c) for f in follows for c in f.categories)
    return tuple(found)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Devices:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext) -> Devices:
        return cls(await ensure_bucket(js, DEVICES))

    async def get(self, token: str) -> Device | None:
        try:
            entry = await self._kv.get(token_hash(token))
        except nats.js.errors.KeyNotFoundError:
            return None
        return Device.model_validate_json(entry.value or b"")

    async def put(self, device: Device) -> None:
        await self._kv.put(token_hash(device.token), device.model_dump_json().encode())

    async def delete(self, token: str) -> None:
        # Purge, not delete: the token must not linger in the bucket's history.
        try:
            await self._kv.purge(token_hash(token))
        except nats.js.errors.KeyNotFoundError:
            pass

    async def count(self) -> int:
        return len(await self._keys())

    async def _keys(self) -> list[str]:
        # Not kv.keys() alone: it may find no key in a bucket that holds some (crieur.bus).
        return await bucket_keys(self._kv)

    async def all(self) -> AsyncIterator[Device]:
        """Every stored phone, one at a time."""
        for key in await self._keys():
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                continue  # forgotten meanwhile
            yield Device.model_validate_json(entry.value or b"")


def now_utc() -> datetime:
    return datetime.now(UTC)
