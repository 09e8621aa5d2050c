"""Everything the front door keeps, all of it in NATS: one object over the stores by concern.

Each concern has its module: `notices` (the NOTICES stream and the read model), `schedule`,
`communes`, `staff`, `idempotency`. This class connects, ensures what the front door owns,
and gives the routes and the `crieur` command one door to all of them.
"""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.kv import KeyValue

from crieur.bus import connect, ensure_all
from schemas import Notice, NoticeEvent
from schemas.streams import (
    CAP_ALERTS,
    COMMUNES,
    DEADLETTERS,
    GROUPS,
    IDEMPOTENCY,
    NOTICES,
    SCHEDULE,
    STAFF,
    STAFF_SESSIONS,
    WITHDRAWALS,
    Bucket,
)
from services.notices.communes import CommuneRegistry
from services.notices.idempotency import IdempotencyKeys
from services.notices.notices import ConcurrentChange, NoticeLog
from services.notices.schedule import Schedule
from services.notices.staff import (
    StaffMember,
    StaffRegistry,
)
from services.notices.view import NoticeView

__all__ = ["ConcurrentChange", "NatsStore", "StaffMember"]

SERVICE = "notices"
# What the front door ensures at start-up: what it owns, and DEADLETTERS, which every
# service that writes dead letters ensures. DELIVERIES belongs to the channels' side.
OWNED_STREAMS: tuple[StreamConfig, ...] = (NOTICES, DEADLETTERS)
OWNED_BUCKETS: tuple[Bucket, ...] = (COMMUNES, STAFF, IDEMPOTENCY, SCHEDULE, STAFF_SESSIONS,
                                     GROUPS, CAP_ALERTS, WITHDRAWALS)


class NatsStore:
    def __init__(self, nc: Client, js: JetStreamContext, buckets: dict[str, KeyValue]) -> None:
        self.nc = nc
        self.js = js
        self.notices = NoticeLog(nc, js)
        self.scheduled_notices = Schedule(buckets[SCHEDULE.name], service=SERVICE)
        self.commune_registry = CommuneRegistry(buckets[COMMUNES.name], service=SERVICE)
        self.staff_registry = StaffRegistry(buckets[STAFF.name])
        self.idempotency = IdempotencyKeys(buckets[IDEMPOTENCY.name])
        # The staff pages' sessions and sign-in throttle (services/notices/auth.py).
        self.sessions: KeyValue = buckets[STAFF_SESSIONS.name]
        # Groups and their broadcasts (groups.py); official alerts read (capfeed.py).
        self.groups_kv: KeyValue = buckets[GROUPS.name]
        self.cap_kv: KeyValue = buckets[CAP_ALERTS.name]
        # Withdrawals held a minute so that staff can undo them (undo.py).
        self.withdrawals_kv: KeyValue = buckets[WITHDRAWALS.name]

    @classmethod
    async def connect(
        cls, url: str, name: str = "crieur-notices", options: dict[str, Any] | None = None
    ) -> NatsStore:
        nc = await connect(url, name=name, options=options)
        js = nc.jetstream()
        return cls(nc, js, await ensure_all(js, OWNED_STREAMS, OWNED_BUCKETS))

    async def close(self) -> None:
        await self.scheduled_notices.mirror.stop()
        await self.commune_registry.stop()
        await self.notices.stop()
        await self.nc.drain()

    # -- notices -----------------------------------------------------------------------

    @property
    def view(self) -> NoticeView:
        return self.notices.view

    async def follow_notices(self, wait_s: float = 30.0) -> None:
        await self.notices.follow(wait_s)

    async def append(self, event: NoticeEvent, expected_last_seq: int) -> int:
        return await self.notices.append(event, expected_last_seq)

    def get(self, commune: str, notice_id: str) -> tuple[int, Notice] | None:
        return self.notices.get(commune, notice_id)

    async def follow_buckets(self) -> None:
        """Mirror the schedule and the commune registry (the scheduler and every read use them)."""
        await self.scheduled_notices.mirror.start()
        await self.commune_registry.start()

    # -- scheduled notices ---------------------------------------------------------------

    async def schedule(self, notice: Notice) -> None:
        await self.scheduled_notices.add(notice)

    async def unschedule(self, notice_id: str) -> None:
        await self.scheduled_notices.remove(notice_id)

    async def scheduled(self, notice_id: str) -> Notice | None:
        return await self.scheduled_notices.get(notice_id)

    def all_scheduled(self) -> list[Notice]:
        return self.scheduled_notices.all()

