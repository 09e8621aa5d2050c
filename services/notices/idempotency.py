"""HTTP Idempotency-Key -> the notice it made (bucket `idempotency`, kept 24 h)."""

from __future__ import annotations

import json

from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue


class IdempotencyKeys:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def claim(self, key: str, value: dict[str, str]) -> dict[str, str] | None:
        """Record `value` under `key` unless the key is taken; returns what holds it if taken.

        Atomic (a KV create), so two requests racing with one key agree on one notice id.
        """
        try:
            await self.kv.create(key, json.dumps(value).encode())
        except KeyWrongLastSequenceError:
            entry = await self.kv.get(key)
            held: dict[str, str] = json.loads(entry.value or b"{}")
            return held
        return None
