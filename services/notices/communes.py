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

    async def require_approval(self, insee: str, categories: tuple[str, ...]) -> Commune | None:
        """Set which categories need a second staff member's approval; None if no such commune."""
        commune = await self.get(insee)
        if commune is None:
            return None
        settings = commune.settings.model_copy(update={"approval_required_for": categories})
        updated = commune.model_copy(update={"settings": settings})
        await self.mirror.put(insee, updated)
        return updated
