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
import secrets
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
# 5 failed sign-ins within 15 minutes lock the account's sign-in for 15 minutes.
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)


class Session(BaseModel):
    model_config = BUS_MODEL

    login: str
    csrf: str
    created_at: datetime
    generation: int = 0


class Failures(BaseModel):
    model_config = BUS_MODEL

    at: tuple[datetime, ...] = ()
    locked_until: datetime | None = None


class Locked(Exception):
    """The account's sign-in is locked after too many failures."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"sign-in locked until {until.isoformat()}")
        self.until = until


def _session_key(session_id: str) -> str:
    return "s." + hashlib.sha256(session_id.encode()).hexdigest()


def _failures_key(login: str) -> str:
    return "f." + (login or "-")


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

    # -- the sign-in throttle, per login ----------------------------------------------------

    async def check_unlocked(self, user: str, now: datetime) -> None:
        failures, _ = await self._failures(login_of(user))
        if failures.locked_until is not None and now < failures.locked_until:
            raise Locked(failures.locked_until)

    async def failed(self, user: str, now: datetime) -> bool:
        """Count a failed sign-in; True when it locks the account's sign-in."""
        key = _failures_key(login_of(user))
        for _attempt in range(10):
            failures, revision = await self._failures(login_of(user))
            recent = (*tuple(t for t in failures.at if now - t < FAILURE_WINDOW), now)
            locked = len(recent) >= MAX_FAILURES
            updated = Failures(at=() if locked else recent,
                               locked_until=now + LOCKOUT if locked else failures.locked_until)
            data = updated.model_dump_json().encode()
            try:
                # Compare-and-set: five browsers failing at once count five, not one.
                if revision is None:
                    await self.kv.create(key, data)
                else:
                    await self.kv.update(key, data, last=revision)
            except KeyWrongLastSequenceError:
                continue
            return locked
        return False

    async def succeeded(self, user: str) -> None:
        await self.kv.delete(_failures_key(login_of(user)))

    async def _failures(self, login: str) -> tuple[Failures, int | None]:
        try:
            entry = await self.kv.get(_failures_key(login))
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
