"""A withdrawal asked on the staff pages waits a minute, so that it can be undone.

Gmail's "undo send", not a correction after the fact: nothing reaches a channel, the sign
or the public page during the minute, so undoing it needs nothing sent to anyone. Telling
residents "withdrawn" then "not withdrawn after all" would cost paid SMS twice and leave
each resident unsure which message counts.

The held withdrawal is a key of the bucket `withdrawals` (`w.<notice id>`), not a timer in
a process: a front door restarted within the minute still withdraws the notice on time,
and any front door may do it. Doing it first marks the key (a compare-and-set on its
revision), so an undo that comes after that mark is refused as too late rather than lost,
and a door that dies after marking is replaced by the next one to look (the withdrawal
itself is idempotent: an already withdrawn notice is left as it is).

The withdrawal, when it goes, is of the notice as it then stands: a correction made within
the minute is withdrawn with it. The JSON API (`POST .../withdraw`) is not delayed: a
script asks for what it means, and has no button to press a minute later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel

from crieur.natsx import bucket_keys
from schemas.notice import ParisDatetime
from schemas.versions import BUS_MODEL, read_message
from services.notices.errors import ApiError
from services.notices.store import StaffMember

log = structlog.get_logger("crieur.notices.undo")

PREFIX = "w."


class HeldWithdrawal(BaseModel):
    """A withdrawal asked on the staff pages, done at `due_at` unless undone first."""

    model_config = BUS_MODEL

    notice_id: str
    commune: str
    by: StaffMember
    asked_at: ParisDatetime
    due_at: ParisDatetime
    # Set by the front door that does it: from then on it cannot be undone.
    going: bool = False


class TooLate(Exception):
    """The withdrawal is already going out (or was never held)."""


def _key(notice_id: str) -> str:
    return PREFIX + notice_id


class Withdrawals:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def hold(self, notice_id: str, commune: str, by: StaffMember, now: datetime,
                   delay: timedelta) -> HeldWithdrawal:
        held = HeldWithdrawal(notice_id=notice_id, commune=commune, by=by, asked_at=now,
                              due_at=now + delay)
        # A second confirmation (a double click) keeps the first minute: put, not create.
        current = await self.get(notice_id)
        if current is not None:
            return current
        await self.kv.put(_key(notice_id), held.model_dump_json().encode())
        return held

    async def get(self, notice_id: str) -> HeldWithdrawal | None:
        try:
            entry = await self.kv.get(_key(notice_id))
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        return read_message(HeldWithdrawal, entry.value)

    async def undo(self, notice_id: str) -> HeldWithdrawal:
        """Drop the held withdrawal; raises TooLate once a front door has started it."""
        try:
            entry = await self.kv.get(_key(notice_id))
        except KeyNotFoundError:
            raise TooLate(notice_id) from None
        if not entry.value:
            raise TooLate(notice_id)
        held = read_message(HeldWithdrawal, entry.value)
        if held.going:
            raise TooLate(notice_id)
        try:
            await self.kv.delete(_key(notice_id), last=entry.revision)
        except KeyWrongLastSequenceError:
            raise TooLate(notice_id) from None  # marked as going in between
        return held

    async def due(self, now: datetime) -> list[tuple[HeldWithdrawal, int]]:
        """The held withdrawals whose minute is over (or already going), with revisions."""
        found: list[tuple[HeldWithdrawal, int]] = []
        if (await self.kv.status()).values == 0:
            return found  # the usual case, answered without a watcher
        for key in await bucket_keys(self.kv):
            if not key.startswith(PREFIX):
                continue
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                continue
            if not entry.value or entry.revision is None:
                continue
            held = read_message(HeldWithdrawal, entry.value)
            if held.going or held.due_at <= now:
                found.append((held, entry.revision))
        return found

    async def claim(self, held: HeldWithdrawal, revision: int) -> bool:
        """Mark it going; False if it was undone or claimed by another door meanwhile."""
        if held.going:
            return True  # a door that claimed it died before it was done
        marked = held.model_copy(update={"going": True})
        try:
            await self.kv.update(_key(held.notice_id), marked.model_dump_json().encode(),
                                 last=revision)
        except KeyWrongLastSequenceError:
            return False
        return True

    async def done(self, notice_id: str) -> None:
        await self.kv.delete(_key(notice_id))


Withdraw = Callable[[HeldWithdrawal], Awaitable[object]]


async def withdraw_due(withdrawals: Withdrawals, now: datetime, withdraw: Withdraw) -> int:
    """Do every held withdrawal whose minute is over; returns how many were done here."""
    done = 0
    for held, revision in await withdrawals.due(now):
        if not await withdrawals.claim(held, revision):
            continue
        try:
            await withdraw(held)
            done += 1
            log.info("held_withdrawal_done", notice_id=held.notice_id, commune=held.commune,
                     staff=held.by.id)
        except ApiError as error:
            # Withdrawn meanwhile (the API, a group, another door): nothing left to do.
            log.info("held_withdrawal_moot", notice_id=held.notice_id, reason=error.kind.code)
        await withdrawals.done(held.notice_id)
    return done


async def run(withdrawals: Withdrawals, clock: Callable[[], datetime], withdraw: Withdraw,
              interval_s: float) -> None:
    while True:
        try:
            await withdraw_due(withdrawals, clock(), withdraw)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("held_withdrawals_check_failed")
        await asyncio.sleep(interval_s)
