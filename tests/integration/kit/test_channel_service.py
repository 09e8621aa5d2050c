"""The kit's service shell with a channel of nothing but itself: it waits for a NATS that
is not up yet, says so on /healthz, restarts a failed task, and stops cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from nats.aio.client import Client
from nats.js import JetStreamContext

from crieur.channel.service import ChannelService, create_app
from crieur.channel.settings import ChannelSettings
from crieur.nats_server import NatsServer, free_port
from schemas.deliveries import Channel
from tests.integration.helpers import wait_for


class Bare(ChannelService):
    channel = Channel.SMS

    def __init__(self, settings: ChannelSettings) -> None:
        super().__init__(settings, name=f"bare-{free_port()}")
        self.opened = 0
        self.runs = 0
        self.closed = False

    async def open(self, js: JetStreamContext) -> None:
        self.opened += 1

    async def setup(self, nc: Client) -> None:
        self.background("flaky", self.flaky)

    async def flaky(self) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("the first run fails")
        await asyncio.Event().wait()

    async def close(self) -> None:
        self.closed = True

    def health(self) -> dict[str, object]:
        return {"runs": self.runs}


async def test_the_shell_waits_for_nats_then_serves_health_and_stops(tmp_path: Path) -> None:
    port = free_port()
    service = Bare(ChannelSettings(nats_url=f"nats://127.0.0.1:{port}", data_dir=tmp_path))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)),
                             base_url="http://bare")
    starting = asyncio.create_task(service.start())
    server = NatsServer(tmp_path / "nats", port=port)
    try:
        await asyncio.sleep(1.5)  # at least one refused connection
        waiting = await http.get("/healthz")
        assert (waiting.status_code, waiting.json()["status"]) == (503, "nats_disconnected")
        assert (await http.get("/readyz")).json()["reasons"] == ["starting"]
        server.start()
        await asyncio.wait_for(starting, 60)
        await wait_for(lambda: service.runs == 2, what="the failed task started again")
        healthy = await http.get("/healthz")
        assert healthy.status_code == 200
        assert healthy.json() == {"status": "ok", "nats": True, "runs": 2}
        assert (await http.get("/readyz")).json() == {"status": "ready"}
        await service.stop()
        assert service.closed and service.opened == 1
        assert service.nc is not None and service.nc.is_closed
    finally:
        starting.cancel()
        await http.aclose()
        server.stop()
