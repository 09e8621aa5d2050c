"""The commune registry's read side (bucket `communes`), for every service that needs it."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from crieur.mirror import BucketMirror
from crieur.natsx import bucket_keys
from schemas.commune import Commune
from schemas.streams import COMMUNES
from schemas.versions import read_message


class CommuneDirectory:
    """Looks communes up in a mirror of the bucket; `start()` it to follow the bucket."""

    def __init__(self, kv: KeyValue, *, service: str = "crieur") -> None:
        self.kv = kv
        self.mirror = BucketMirror(kv, Commune, service=service)

    @classmethod
    async def open(cls, js: JetStreamContext, *, service: str = "crieur") -> CommuneDirectory:
        """The directory of the existing bucket (the front door owns and ensures it).

        Raises nats.js.errors.BucketNotFoundError while no front door has created it.
        """
        return cls(await js.key_value(COMMUNES.name), service=service)

    async def start(self) -> None:
        await self.mirror.start()

    async def stop(self) -> None:
        await self.mirror.stop()

    async def get(self, insee: str) -> Commune | None:
        known = self.mirror.values.get(insee)
        if known is not None:
            return known
        # Not mirrored (a command does not follow the bucket) or just added elsewhere.
        try:
            entry = await self.kv.get(insee)
        except KeyNotFoundError:
            return None
        return read_message(Commune, entry.value or b"")

    async def all(self) -> list[Commune]:
        """Every registered commune, by INSEE code."""
        keys = await bucket_keys(self.kv)
        found = [await self.get(k) for k in sorted(keys)]
        return [c for c in found if c is not None]
