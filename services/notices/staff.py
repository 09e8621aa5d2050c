"""Staff tokens (bucket `staff`): who may publish for which communes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from nats.js.errors import KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue
from pydantic import BaseModel, Field

from schemas.versions import BUS_MODEL, read_message


class StaffMember(BaseModel):
    """A staff token's record; the token itself is never stored, only its SHA-256."""

    model_config = BUS_MODEL

    id: str
    name: str = Field(min_length=1, max_length=100)
    communes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None


def token_hash(token: str) -> str:
    # Tokens are 192 random bits, so a fast hash is enough (argon2 is for passwords).
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "crieur_" + secrets.token_urlsafe(24)


class StaffRegistry:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def add(self, name: str, communes: tuple[str, ...]) -> tuple[StaffMember, str]:
        """A new staff member; returns the token, which is shown once and never stored."""
        token = new_token()
        member = StaffMember(
            id=secrets.token_hex(4), name=name, communes=communes, created_at=datetime.now(UTC)
        )
        await self.kv.put(token_hash(token), member.model_dump_json().encode())
        return member, token

    async def for_token(self, token: str) -> StaffMember | None:
        try:
            entry = await self.kv.get(token_hash(token))
        except KeyNotFoundError:
            return None
        member = read_message(StaffMember, entry.value or b"")
        return None if member.revoked_at else member

    async def all(self) -> list[tuple[str, StaffMember]]:
        try:
            keys = await self.kv.keys()
        except NoKeysError:
            return []
        members = []
        for key in keys:
            entry = await self.kv.get(key)
            members.append((key, read_message(StaffMember, entry.value or b"")))
        return sorted(members, key=lambda km: km[1].created_at)

    async def revoke(self, id_or_name: str) -> list[StaffMember]:
        """Revoke every live token whose id or name matches; returns what was revoked."""
        revoked = []
        for key, member in await self.all():
            if member.revoked_at is None and id_or_name in (member.id, member.name):
                done = member.model_copy(update={"revoked_at": datetime.now(UTC)})
                await self.kv.put(key, done.model_dump_json().encode())
                revoked.append(done)
        return revoked
