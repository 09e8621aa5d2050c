"""The commune registry's read side (bucket `communes`), for every service that needs it."""

from __future__ import annotations

import re
import unicodedata

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from crieur.geo import PlaceCommune, geography
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


def folded(text: str) -> str:
    """A commune's name as residents type it: no accents, case, hyphens or apostrophes."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[-'’]", " ", plain).lower().split())


def places_for(query: str) -> list[PlaceCommune]:
    """The official communes a resident's words name: an INSEE code, a postal code (which
    may cover several communes) or a name (which several communes may share), by INSEE code."""
    query = query.strip()
    geo = geography()
    if re.fullmatch(r"\d{5}|2[ABab]\d{3}", query):
        code = query.upper()
        found = [c for c in geo.communes.values() if code in c.postal_codes]
        if code in geo.communes:
            found.append(geo.communes[code])
    else:
        name = folded(query)
        found = [c for c in geo.communes.values() if name and folded(c.name) == name]
    return sorted(set(found), key=lambda c: c.insee)
