"""Staff tokens and sign-ins (bucket `staff`): who may publish for which communes.

A token's record is keyed by the token's SHA-256 (scripts and the API); a staff member's
sign-in for the browser is keyed `login.<login>` and holds an argon2id hash of the password.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import unicodedata
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, Field

from crieur.bus import bucket_keys
from schemas.versions import BUS_MODEL, read_message


class StaffMember(BaseModel):
    """A staff token's record; the token itself is never stored, only its SHA-256."""

    model_config = BUS_MODEL

    id: str
    name: str = Field(min_length=1, max_length=100)
    communes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None


class StaffAccount(BaseModel):
    """A staff member's browser sign-in: the password is kept only as an argon2id hash."""

    model_config = BUS_MODEL

    id: str
    login: str
    name: str = Field(min_length=1, max_length=100)
    communes: tuple[str, ...]
    password_hash: str
    created_at: datetime
    password_set_at: datetime
    revoked_at: datetime | None = None

    def member(self) -> StaffMember:
        """The account as the routes see a staff member (the same as a token's record)."""
        return StaffMember(id=self.id, name=self.name, communes=self.communes,
                           created_at=self.created_at)


LOGIN_PREFIX = "login."
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
HASHER = PasswordHasher()
# Verified when the login is unknown, so that an unknown login takes as long as a known one.
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))


class WeakPassword(ValueError):
    """A password too short (or absurdly long) to be set."""


def login_of(name: str) -> str:
    """The sign-in identifier of a name: `Secrétariat (démo)` -> `secretariat-demo`.

    Typing the name itself or its login signs in alike; it is also a valid KV key.
    """
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:64]


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"the password must have at most {MAX_PASSWORD} characters")
    return password


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
        keys = await bucket_keys(self.kv)
        members = []
        for key in keys:
            if key.startswith(LOGIN_PREFIX):
                continue
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
        for account in await self.accounts():
            if account.revoked_at is None and id_or_name in (account.id, account.name,
                                                             account.login):
                await self._put_account(account.model_copy(
                    update={"revoked_at": datetime.now(UTC)}))
        return revoked

    # -- sign-in with a password (the staff pages) ---------------------------------------

    async def account(self, login: str) -> StaffAccount | None:
        if not login:
            return None
        try:
            entry = await self.kv.get(LOGIN_PREFIX + login)
        except KeyNotFoundError:
            return None
        return read_message(StaffAccount, entry.value or b"")

    async def accounts(self) -> list[StaffAccount]:
        keys = await bucket_keys(self.kv)
        found = []
        for key in keys:
            if key.startswith(LOGIN_PREFIX):
                entry = await self.kv.get(key)
                found.append(read_message(StaffAccount, entry.value or b""))
        return found

    async def _put_account(self, account: StaffAccount) -> None:
        await self.kv.put(LOGIN_PREFIX + account.login, account.model_dump_json().encode())

    async def set_password(
        self, name: str, password: str, communes: tuple[str, ...] = ()
    ) -> StaffAccount:
        """Set (or reset) the password of `name`, creating its sign-in if it has none.

        Its communes are those given plus those of the name's live tokens; a revoked
        sign-in is revived (an operator setting a password means it).
        """
        check_password(password)
        login = login_of(name)
        if not login:
            raise ValueError(f"{name!r} has no letter or digit to sign in with")
        existing = await self.account(login)
        if existing is not None and existing.name != name and existing.revoked_at is None:
            raise ValueError(f"the login {login!r} is already {existing.name!r}'s")
        live = {c for _, m in await self.all() if m.name == name and m.revoked_at is None
                for c in m.communes}
        kept = set(existing.communes) if existing and existing.revoked_at is None else set()
        now = datetime.now(UTC)
        digest = await asyncio.to_thread(HASHER.hash, password)
        account = StaffAccount(
            id=existing.id if existing else secrets.token_hex(4), login=login, name=name,
            communes=tuple(sorted(kept | live | set(communes))), password_hash=digest,
            created_at=existing.created_at if existing else now, password_set_at=now,
        )
        await self._put_account(account)
        return account

    async def verify(self, user: str, password: str) -> StaffAccount | None:
        """The live account whose login (or name) and password these are, else None."""
        account = await self.account(login_of(user))
        digest = account.password_hash if account is not None else _DUMMY_HASH
        try:
            await asyncio.to_thread(HASHER.verify, digest, password)
        except (VerificationError, InvalidHashError):
            return None
        if account is None or account.revoked_at is not None:
            return None
        if HASHER.check_needs_rehash(account.password_hash):
            # Parameters raised since it was set: store it again with today's cost.
            rehashed = await asyncio.to_thread(HASHER.hash, password)
            await self._put_account(account.model_copy(update={"password_hash": rehashed}))
        return account
