"""A KV bucket kept in memory by a watcher: reads cost no NATS call and survive an outage."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

import structlog
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError

log = structlog.get_logger("crieur.mirror")

M = TypeVar("M", bound=BaseModel)


class BucketMirror(Generic[M]):
    """Every entry of one bucket, as `model`, in `values`.

    Writes still go to the bucket first; the local copy is updated at once as well, so
    the writer reads its own writes, and others' writes arrive through the watcher.
    """

    def __init__(self, kv: KeyValue, model: type[M]) -> None:
        self.kv = kv
        self.model = model
        self.values: dict[str, M] = {}
        self._watcher: KeyValue.KeyWatcher | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._watcher = await self.kv.watchall()
        self._task = asyncio.create_task(self._mirror(self._watcher))

    async def _mirror(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None:  # the end of the initial values
                continue
            if entry.operation in ("DEL", "PURGE"):
                self.values.pop(entry.key, None)
                continue
            try:
                self.values[entry.key] = self.model.model_validate_json(entry.value or b"")
            except ValidationError as error:
                log.error("bucket_entry_unreadable", model=self.model.__name__, key=entry.key,
                          error=str(error)[:300])

    async def put(self, key: str, value: M) -> None:
        await self.kv.put(key, value.model_dump_json().encode())
        self.values[key] = value

    async def delete(self, key: str) -> None:
        await self.kv.delete(key)
        self.values.pop(key, None)

    async def stop(self) -> None:
        if self._watcher is not None:
            await self._watcher.stop()  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()
