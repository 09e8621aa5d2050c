"""The commune registry as its owner, the front door, writes it; reads are `crieur.communes`."""

from __future__ import annotations

from datetime import UTC, datetime

from crieur.communes import CommuneDirectory
from schemas import Commune


class CommuneRegistry(CommuneDirectory):
    async def add(self, insee: str, name: str) -> Commune:
        commune = Commune(insee=insee, name=name, created_at=datetime.now(UTC))
        await self.mirror.put(insee, commune)
        return commune
