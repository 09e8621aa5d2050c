"""Notices waiting for their publish_at (bucket `schedule`), mirrored for the scheduler."""

from __future__ import annotations

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from crieur.mirror import BucketMirror
from schemas import Notice
from schemas.versions import read_message


class Schedule:
    def __init__(self, kv: KeyValue, *, service: str) -> None:
        self.kv = kv
        self.mirror = BucketMirror(kv, Notice, service=service)

    async def add(self, notice: Notice) -> None:
        await self.mirror.put(notice.id, notice)

    async def remove(self, notice_id: str) -> None:
        await self.mirror.delete(notice_id)

    async def get(self, notice_id: str) -> Notice | None:
        """Read from the bucket, not the mirror: a staff read must see another door's write."""
        try:
            entry = await self.kv.get(notice_id)
        except KeyNotFoundError:
            return None
        return read_message(Notice, entry.value or b"")

    def all(self) -> list[Notice]:
        return list(self.mirror.values.values())
