"""A front door on the session's nats-server, with a commune and two staff members."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.notices.api import Context
from services.notices.app import create_app
from services.notices.settings import NoticesSettings
from services.notices.store import NatsStore
from tests.integration.notices.helpers import Clock, random_insee
from tests.integration.staff.helpers import PASSWORD, Office


@pytest.fixture
async def office(nats_url: str) -> AsyncIterator[Office]:
    settings = NoticesSettings(nats_url=nats_url, schedule_interval_s=0.2,
                               public_url="https://crieur.example")
    store = await NatsStore.connect(nats_url, name="test-staff")
    clock = Clock()
    app = create_app(settings, Context(store=store, settings=settings, clock=clock))
    insee = random_insee()
    await store.commune_registry.add(insee, "Lavoncourt")
    # Names unique per test: the staff bucket is shared by the whole session.
    _, token = await store.staff_registry.add(f"Anne {insee}", (insee,))
    await store.staff_registry.set_password(f"Anne {insee}", PASSWORD)
    await store.staff_registry.add(f"Bruno {insee}", (insee,))
    await store.staff_registry.set_password(f"Bruno {insee}", PASSWORD)
    async with app.router.lifespan_context(app):
        # A client address of its own (from the commune code, unique in the session): the
        # sign-in throttle counts per address, in a bucket every test of the session shares.
        n = int(insee)
        client = (f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", 50000)
        yield Office(app, store, clock, insee, token,
                     httpx.ASGITransport(app=app, client=client))
    await store.close()
