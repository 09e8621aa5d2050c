"""Staff tokens and sign-ins (bucket `staff`): who may publish for which communes.

A token's record is keyed by the token's SHA-256 (scripts and the API); a staff member's
sign-in for the browser is keyed `login.<login>` and holds an argon2id hash of the password.
One person is the tokens of a name and the sign-in of that name (`Person`): revoking any of
them by login, name or id revokes them all.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, Field

from crieur.natsx import bucket_keys
from schemas.versions import BUS_MODEL, read_message


class StaffMember(BaseModel):
    """A staff token's record; the token itself is never stored, only its SHA-256."""

    model_config = BUS_MODEL

    id: str
    name: str = Field(min_length=1, max_length=100)
    communes: tuple[str, ...]
    # Groups of communes it may publish for as a whole (services/notices/groups.py).
    groups: tuple[str, ...] = ()
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
    # Groups of communes it may publish for as a whole, as a token's (groups.py).
    groups: tuple[str, ...] = ()
    # Raised when the password is set again or the sign-in revoked: a session opened under
    # an older generation is over (auth.still_valid, checked on every request). A counter,
    # not a time, so that the operator's clock and the front door's need not agree.
    session_generation: int = 0
    # A temporary password set by a colleague (staff_pages.team): its holder must choose
    # their own before any other staff page opens.
    must_change_password: bool = False

    def member(self) -> StaffMember:
        """The account as the routes see a staff member (the same as a token's record)."""
        return StaffMember(id=self.id, name=self.name, communes=self.communes,
                           groups=self.groups, created_at=self.created_at)


T = TypeVar("T")
LOGIN_PREFIX = "login."
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
HASHER = PasswordHasher()


@functools.cache
def dummy_hash() -> str:
    """Verified when the login is unknown, so that an unknown login takes as long as a known
    one. Made on first use, not at import: argon2 takes much of a second and 64 MiB, and
    every `crieur` command imports this module; the front door makes it as it starts."""
    return HASHER.hash(secrets.token_urlsafe(16))


class Busy(Exception):
    """Every password check of this process is taken and the queue behind them is full."""


class VerifyGate:
    """At most `concurrent` password checks at once in this process, `queue` more waiting.

    An argon2 check holds 64 MiB while it runs: without a bound, a few dozen sign-ins at
    once take hundreds of megabytes. A check already running in its thread keeps its slot
    until it ends, even if the request that asked for it has gone (a client hanging up must
    not free a slot whose memory is still taken).
    """

    def __init__(self, concurrent: int, queue: int) -> None:
        if concurrent < 1 or queue < 0:
            raise ValueError("concurrent must be >= 1 and queue >= 0")
        self._slots = asyncio.Semaphore(concurrent)
        self._limit = concurrent + queue
        self._inside = 0

    async def run(self, check: Callable[[], T]) -> T:
        """`check()` in a thread once a slot is free; raises Busy at once if none will be."""
        if self._inside >= self._limit:
            raise Busy()
        self._inside += 1
        try:
            await self._slots.acquire()
        except BaseException:
            self._inside -= 1
            raise
        task = asyncio.ensure_future(asyncio.to_thread(check))

        def release(_: object) -> None:
            self._slots.release()
            self._inside -= 1

        task.add_done_callback(release)
        return await asyncio.shield(task)


class WeakPassword(ValueError):
    """A password too short (or absurdly long) to be set."""


class StaffNotFound(LookupError):
    """No member of staff, or more than one, answers to a login, name or id."""


@dataclass(frozen=True)
class Person:
    """Every way one member of staff has in: the tokens of a name and its sign-in."""

    name: str
    tokens: tuple[StaffMember, ...]
    account: StaffAccount | None

    @property
    def ids(self) -> tuple[str, ...]:
        return (*(t.id for t in self.tokens), *((self.account.id,) if self.account else ()))

    @property
    def live_tokens(self) -> tuple[StaffMember, ...]:
        return tuple(t for t in self.tokens if t.revoked_at is None)

    @property
    def signs_in(self) -> bool:
        return self.account is not None and self.account.revoked_at is None

    @property
    def revoked_at(self) -> datetime | None:
        """When the last of its ways in was revoked; None while one is left."""
        if self.live_tokens or self.signs_in:
            return None
        times = [t.revoked_at for t in self.tokens if t.revoked_at is not None]
        if self.account is not None and self.account.revoked_at is not None:
            times.append(self.account.revoked_at)
        return max(times, default=None)

    @property
    def communes(self) -> tuple[str, ...]:
        """The communes it may publish for (or, once revoked, those it could)."""
        live = self.revoked_at is None
        found = {c for t in (self.live_tokens if live else self.tokens) for c in t.communes}
        if self.account is not None and (self.signs_in or not live):
            found.update(self.account.communes)
        return tuple(sorted(found))

    def answers_to(self, who: str) -> bool:
        # login_of(name) too: a token-only script answers to the login it would sign in with.
        logins = {login_of(self.name), *((self.account.login,) if self.account else ())}
        return who == self.name or who in logins or who in self.ids


@dataclass(frozen=True)
class Revoked:
    """What `StaffRegistry.revoke` ended: nothing at all if the person was already revoked."""

    person: Person
    tokens: tuple[StaffMember, ...]
    account: StaffAccount | None


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


# For the CLI and scripts, which check one password at a time.
_UNBOUNDED = VerifyGate(concurrent=1_000_000, queue=0)


class StaffRegistry:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def add(self, name: str, communes: tuple[str, ...],
                  groups: tuple[str, ...] = ()) -> tuple[StaffMember, str]:
        """A new staff member; returns the token, which is shown once and never stored."""
        token = new_token()
        member = StaffMember(
            id=secrets.token_hex(4), name=name, communes=communes, groups=groups,
            created_at=datetime.now(UTC)
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

    async def people(self) -> list[Person]:
        """Every member of staff, live or revoked, the first added first."""
        tokens: dict[str, list[StaffMember]] = {}
        for _, member in await self.all():
            tokens.setdefault(member.name, []).append(member)
        accounts = {a.name: a for a in await self.accounts()}
        people = [Person(name, tuple(tokens.get(name, ())), accounts.get(name))
                  for name in tokens.keys() | accounts.keys()]
        return sorted(people, key=lambda p: min(
            [t.created_at for t in p.tokens] + ([p.account.created_at] if p.account else [])))

    async def person(self, who: str) -> Person:
        """The one member of staff whose login, name, token id or sign-in id this is."""
        found = [p for p in await self.people() if who and p.answers_to(who)]
        if not found:
            raise StaffNotFound(f"no staff member with login, name or id {who!r} "
                                "(crieur staff list)")
        if len(found) > 1:
            names = ", ".join(repr(p.name) for p in found)
            raise StaffNotFound(f"{who!r} is several staff members ({names}): give an id "
                                "(crieur staff list)")
        return found[0]

    async def revoke(self, who: str) -> Revoked:
        """End every way in of the person `who` names: its tokens, password and sessions.

        Raises StaffNotFound, having changed nothing, when `who` is no one (or several).
        """
        person = await self.person(who)
        now = datetime.now(UTC)
        ids = {t.id for t in person.live_tokens}
        tokens = []
        for key, member in await self.all():
            if member.id in ids and member.revoked_at is None:
                done = member.model_copy(update={"revoked_at": now})
                await self.kv.put(key, done.model_dump_json().encode())
                tokens.append(done)
        account = None
        if person.account is not None and person.account.revoked_at is None:
            account = person.account.model_copy(update={
                "revoked_at": now,
                "session_generation": person.account.session_generation + 1})
            await self._put_account(account)
        return Revoked(person, tuple(tokens), account)

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
        self, name: str, password: str, communes: tuple[str, ...] = (),
        groups: tuple[str, ...] = (), *, temporary: bool = False,
    ) -> StaffAccount:
        """Set (or reset) the password of `name`, creating its sign-in if it has none.

        Its communes and groups are those given plus those of the name's live tokens; a
        revoked sign-in is revived (an operator setting a password means it). A
        `temporary` one (set by a colleague) must be changed at the next sign-in.
        """
        check_password(password)
        login = login_of(name)
        if not login:
            raise ValueError(f"{name!r} has no letter or digit to sign in with")
        existing = await self.account(login)
        if existing is not None and existing.name != name and existing.revoked_at is None:
            raise ValueError(f"the login {login!r} is already {existing.name!r}'s")
        tokens = [m for _, m in await self.all() if m.name == name and m.revoked_at is None]
        live = {c for m in tokens for c in m.communes}
        live_groups = {g for m in tokens for g in m.groups}
        alive = existing is not None and existing.revoked_at is None
        kept = set(existing.communes) if existing and alive else set()
        kept_groups = set(existing.groups) if existing and alive else set()
        now = datetime.now(UTC)
        digest = await asyncio.to_thread(HASHER.hash, password)
        account = StaffAccount(
            id=existing.id if existing else secrets.token_hex(4), login=login, name=name,
            communes=tuple(sorted(kept | live | set(communes))), password_hash=digest,
            groups=tuple(sorted(kept_groups | live_groups | set(groups))),
            created_at=existing.created_at if existing else now, password_set_at=now,
            # A new password ends the sessions opened with the old one (or before a revoke).
            session_generation=existing.session_generation + 1 if existing else 0,
            must_change_password=temporary,
        )
        await self._put_account(account)
        return account

    async def verify(self, user: str, password: str, gate: VerifyGate | None = None
                     ) -> StaffAccount | None:
        """The live account whose login (or name) and password these are, else None.

        With a gate, the argon2 work waits for a slot of it (or raises Busy).
        """
        account = await self.account(login_of(user))
        digest = account.password_hash if account is not None else dummy_hash()
        gate = gate or _UNBOUNDED

        def check() -> bool:
            try:
                return HASHER.verify(digest, password)
            except (VerificationError, InvalidHashError):
                return False

        if not await gate.run(check):
            return None
        if account is None or account.revoked_at is not None:
            return None
        if HASHER.check_needs_rehash(account.password_hash):
            # Parameters raised since it was set: store it again with today's cost.
            rehashed = await gate.run(lambda: HASHER.hash(password))
            await self._put_account(account.model_copy(update={"password_hash": rehashed}))
        return account
