"""Staff sign-in for the browser: sessions, CSRF tokens and the sign-in throttle.

Sessions live server-side in the `staff_sessions` bucket, keyed by a hash of the cookie (a
read of the bucket gives no usable cookie); the cookie is HttpOnly, SameSite=Lax, and
Secure when the public URL is HTTPS. Every form carries the session's CSRF token.
A session holds its account's session generation when it was opened; revoking the account or
setting its password again raises it, which ends every session opened before (`still_valid`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel

from schemas.streams import STAFF_SESSIONS
from schemas.versions import BUS_MODEL, read_message
from services.notices.staff import StaffAccount, login_of

SESSION_COOKIE = "crieur_staff"
# Before a session exists, the sign-in form's CSRF token is checked against this cookie.
LOGIN_CSRF_COOKIE = "crieur_staff_login"
COOKIE_PATH = "/staff"
SESSION_LIFE = timedelta(seconds=STAFF_SESSIONS.ttl)


class Session(BaseModel):
    model_config = BUS_MODEL

    login: str
    csrf: str
    created_at: datetime
    generation: int = 0


class Failures(BaseModel):
    """Sign-in attempts counted against one login or one client address (`f.`, `c.` keys).

    Forgotten with the bucket's TTL, 12 hours after the last attempt let through.
    """

    model_config = BUS_MODEL

    count: int = 0
    last_at: datetime | None = None


@dataclass(frozen=True)
class Throttle:
    """How many attempts go through freely, then how long each further one must wait.

    After `free` attempts (per login, and `client_free` per client address), the next one
    must come at least `delay_s * 2**k` seconds after the last one let through (k = how many
    came after the free ones), at most `max_delay_s`: a guesser gets a few tries an hour at
    most, while the rightful user, whose login anyone may know, is never locked out for long.
    """

    free: int = 5
    client_free: int = 20
    delay_s: float = 1.0
    max_delay_s: float = 300.0

    def wait_s(self, failures: Failures, free: int, now: datetime) -> float:
        """Seconds before the next attempt may come (0: now)."""
        if failures.count < free or failures.last_at is None:
            return 0.0
        # The exponent is capped: a count in the thousands must not overflow the float.
        delay = min(self.max_delay_s, self.delay_s * 2.0 ** min(failures.count - free, 40))
        # Never more than the delay: another front door's clock a little ahead must not
        # stretch it.
        elapsed = max(0.0, (now - failures.last_at).total_seconds())
        return max(0.0, delay - elapsed)


class TooEarly(Exception):
    """An attempt before the throttle's delay has passed; its password is never checked."""

    def __init__(self, retry_after_s: float, scope: str) -> None:
        super().__init__(f"sign-in throttled by {scope} for {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s
        self.scope = scope


def _session_key(session_id: str) -> str:
    return "s." + hashlib.sha256(session_id.encode()).hexdigest()


def _failures_key(login: str) -> str:
    return "f." + (login or "-")


def _client_failures_key(client: str) -> str:
    # An IPv6 /64 has colons, which a key may not: `2001:db8::/64` -> `c.2001_db8__/64`.
    return "c." + (re.sub(r"[^-/_=.a-zA-Z0-9]", "_", client).strip(".") or "-")


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens; an empty one never matches."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def new_token() -> str:
    return secrets.token_urlsafe(32)


class Sessions:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def create(self, account: StaffAccount, now: datetime) -> tuple[str, Session]:
        session_id = new_token()
        session = Session(login=account.login, csrf=new_token(), created_at=now,
                          generation=account.session_generation)
        await self.kv.put(_session_key(session_id), session.model_dump_json().encode())
        return session_id, session

    async def get(self, session_id: str, now: datetime) -> Session | None:
        if not session_id or len(session_id) > 100:
            return None
        try:
            entry = await self.kv.get(_session_key(session_id))
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None  # deleted (signed out)
        session = read_message(Session, entry.value)
        # The bucket forgets it after its TTL; the check here does not rely on that.
        if now - session.created_at >= SESSION_LIFE:
            return None
        return session

    async def end(self, session_id: str) -> None:
        if session_id:
            await self.kv.delete(_session_key(session_id))

    # -- the sign-in throttle, per login and per client address --------------------------

    async def attempt(self, user: str, client: str, throttle: Throttle, now: datetime) -> None:
        """Count a sign-in attempt before its password is checked, or raise TooEarly.

        Counting first, with a compare-and-set on the record's revision, is what makes
        thirty attempts at once count thirty: none sees a count its neighbours have not
        raised yet. An attempt refused writes nothing, so knocking does not push the
        rightful user's turn back.
        """
        client_key, login_key = _client_failures_key(client), _failures_key(login_of(user))
        # A throttled login is refused on one read, before the client's count is touched:
        # a flood at one login costs the store no writes.
        wait = throttle.wait_s((await self._failures(login_key))[0], throttle.free, now)
        if wait > 0:
            raise TooEarly(wait, "login")
        await self._admit(client_key, throttle, throttle.client_free, "client", now)
        try:
            await self._admit(login_key, throttle, throttle.free, "login", now)
        except BaseException:
            await self._refund(client_key)
            raise

    async def abandoned(self, user: str, client: str) -> None:
        """Give back an attempt whose password was not checked after all (server busy)."""
        await self._refund(_client_failures_key(client))
        await self._refund(_failures_key(login_of(user)))

    async def succeeded(self, user: str, client: str) -> None:
        # The login's count starts again; the client's only gives back this attempt, so that
        # one good password does not buy another login's guesser a fresh allowance.
        await self.kv.delete(_failures_key(login_of(user)))
        await self._refund(_client_failures_key(client))

    async def _admit(self, key: str, throttle: Throttle, free: int, scope: str,
                     now: datetime) -> None:
        for _attempt in range(50):
            failures, revision = await self._failures(key)
            wait = throttle.wait_s(failures, free, now)
            if wait > 0:
                raise TooEarly(wait, scope)
            counted = Failures(count=failures.count + 1, last_at=now)
            if await self._swap(key, counted, revision):
                return
        # Fifty lost races in a row: so many attempts at once are no rightful user's.
        raise TooEarly(throttle.delay_s, scope)

    async def _refund(self, key: str) -> None:
        for _attempt in range(50):
            failures, revision = await self._failures(key)
            if failures.count <= 0:
                return
            if await self._swap(key, failures.model_copy(update={"count": failures.count - 1}),
                                revision):
                return

    async def _swap(self, key: str, failures: Failures, revision: int | None) -> bool:
        data = failures.model_dump_json().encode()
        try:
            if revision is None:
                await self.kv.create(key, data)
            else:
                await self.kv.update(key, data, last=revision)
        except KeyWrongLastSequenceError:
            return False
        return True

    async def _failures(self, key: str) -> tuple[Failures, int | None]:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return Failures(), None
        if not entry.value:
            # Deleted (after a success): its delete marker is the revision to update from.
            return Failures(), entry.revision
        return read_message(Failures, entry.value), entry.revision


def still_valid(session: Session, account: StaffAccount | None) -> bool:
    """Whether a session's account still lets it in: not revoked, no password set since."""
    return (account is not None and account.revoked_at is None
            and account.login == session.login
            and account.session_generation == session.generation)


def now_utc() -> datetime:
    return datetime.now(UTC)
