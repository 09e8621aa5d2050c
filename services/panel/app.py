"""Builds the LED sign service from its settings: one process consumes NATS and serves HTTP.

The sign must keep working on a village square: it starts (and keeps showing) without
network, from the playlist it saved last time; it connects in the background, forever,
and once the stream has been replayed the stream's word replaces the saved one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError

from crieur import metrics
from crieur.bus import OUTAGE, ensure_streams
from crieur.communes import CommuneDirectory
from crieur.tasks import Supervisor
from schemas import subjects
from schemas.deliveries import Channel, DeliveryReport
from schemas.previews import PanelPreview, PreviewRequest
from schemas.streams import DEADLETTERS, DELIVERIES, DELIVERIES_STREAM, NOTICES_STREAM
from services.panel import web
from services.panel.driver import PanelDriver, PngFrameDriver
from services.panel.handlers import NoticeFeed, make_broker, register, register_previews
from services.panel.playlist import BlankHours, Playlist
from services.panel.preview import panel_preview
from services.panel.render import PanelSpec
from services.panel.settings import PanelSettings
from services.panel.showing import DeliveryTracker, Reporter, Show, Sign, ThrottledDriver

log = structlog.get_logger("crieur.panel")

SNAPSHOT = "playlist.json"

# The streams the sign writes to, and so ensures; it only reads NOTICES.
WRITES = (DELIVERIES, DEADLETTERS)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Panel:
    """Everything one sign runs: feed, playlist, show loop, reports, web sign."""

    def __init__(self, settings: PanelSettings, *, clock: Callable[[], datetime] = _utcnow,
                 broker: NatsBroker | None = None,
                 extra_drivers: tuple[PanelDriver, ...] = ()) -> None:
        self.settings = settings
        self.commune = settings.panel_commune
        self.spec = PanelSpec.from_string(settings.panel_size, color=settings.panel_color,
                                          rgb=settings.panel_rgb)
        self.playlist = Playlist(self.commune, BlankHours.parse(settings.panel_blank_hours))
        self.sign = Sign(self.playlist, clock)
        self.feed = NoticeFeed(self.playlist, on_change=self.sign.touch)
        self.broker = broker or make_broker(settings.nats_url)
        register(self.broker, self.feed)
        register_previews(self.broker, self.commune, self.preview)
        self.web = web.WebSignDriver(self.spec)
        drivers: list[PanelDriver] = [self.web, *extra_drivers]
        if settings.panel_png_interval_s > 0:
            drivers.append(ThrottledDriver(PngFrameDriver(settings.frames_dir),
                                           settings.panel_png_interval_s))
        self.tracker = DeliveryTracker(self.commune, settings.panel_name,
                                       settings.panel_report_interval_s)
        self.reporter = Reporter(self.publish_report)
        self.show = Show(self.sign, self.spec, drivers, self.tracker, self.reporter,
                         slide_seconds=settings.panel_slide_seconds,
                         scroll_speed=settings.panel_scroll_speed)
        self.commune_name = ""
        # None until the registry was asked; False: CRIEUR_PANEL_COMMUNE is not registered.
        self.commune_registered: bool | None = None
        self.tasks = Supervisor("panel")
        self._saved_generation = -1
        self._bus_ready = False

    @property
    def snapshot_path(self) -> Path:
        return self.settings.frames_dir / SNAPSHOT

    @property
    def connected(self) -> bool:
        if not self._bus_ready:
            return False
        with contextlib.suppress(Exception):
            return bool(self.broker.connection.is_connected)
        return False

    def current(self) -> dict[str, Any]:
        """The /playlist document now."""
        return web.snapshot(self.playlist, self.sign.clock(), name=self.settings.panel_name,
                            size=f"{self.spec.width}x{self.spec.height}",
                            synced=self.feed.synced.is_set(), connected=self.connected,
                            commune_name=self.commune_name)

    # -- life -------------------------------------------------------------------------

    async def start(self) -> None:
        self.restore()
        # Each is restarted if it fails: a dark sign for one bad frame is not an option.
        self.tasks.start("show", self.show.run)
        self.tasks.start("reporter", self.reporter.run)
        self.tasks.start("watch", self.watch)
        self.tasks.start("connect", self.connect)
        log.info("panel_started", commune=self.commune, size=self.settings.panel_size,
                 url=f"http://{self.settings.panel_http_host}:{self.settings.panel_http_port}")

    async def stop(self) -> None:
        await self.tasks.stop()
        # What the sign showed up to now is worth a report, if NATS can take it quickly.
        for report in self.tracker.flush(self.sign.clock()):
            self.reporter.submit(report)
        if self.connected:
            with contextlib.suppress(Exception):
                await self.reporter.drain(within=3.0)
        self.save()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        log.info("panel_stopped", commune=self.commune, unsent_reports=self.reporter.pending)

    async def connect(self) -> None:
        """Connect, ensure the streams, subscribe; retried until it works, however long."""
        delay = 1.0
        while True:
            try:
                await self.broker.connect()
                OUTAGE.end("nats_connected")
                js = self.broker.connection.jetstream()
                await ensure_streams(js, WRITES)
                # NOTICES is the front door's: the sign waits for it rather than create it.
                await js.stream_info(NOTICES_STREAM)
                await self.broker.start()
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("panel_connect_failed", commune=self.commune,
                            error=repr(error)[:200], retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self._bus_ready = True
        log.info("panel_connected", commune=self.commune)
        js = self.broker.connection.jetstream()
        info = await js.stream_info(NOTICES_STREAM,
                                    subjects_filter=subjects.commune_notices(self.commune))
        if not info.state.subjects:
            # Nothing on the stream for this commune: the replay is complete as it is.
            self.feed.mark_synced()
        await self.check_commune(js)

    async def preview(self, request: PreviewRequest) -> PanelPreview:
        """A staff preview of a draft of this commune, drawn as this sign would draw it."""
        # Rendering a long strip takes a moment: off the loop that drives the sign.
        return await asyncio.to_thread(panel_preview, self.spec, request.notice,
                                       self.settings.panel_scroll_speed)

    async def check_commune(self, js: JetStreamContext) -> None:
        """Say at once if the commune is not registered: no notice will ever come for it."""
        try:
            commune = await (await CommuneDirectory.open(js)).get(self.commune)
        except BucketNotFoundError:
            commune = None  # no front door has run yet: nothing is registered
        except Exception as error:  # the name is a nicety; the sign works without
            log.warning("panel_commune_lookup_failed", commune=self.commune,
                        error=repr(error)[:200])
            return
        self.commune_registered = commune is not None
        if commune is None:
            log.warning("panel_commune_unregistered", commune=self.commune,
                        hint="CRIEUR_PANEL_COMMUNE names no registered commune: check the "
                             "code, or register it (crieur commune add)")
            return
        self.commune_name = commune.name
        self.sign.touch()

    async def publish_report(self, report: DeliveryReport, msg_id: str) -> None:
        if not self.connected:
            raise ConnectionError("not connected to NATS")
        await self.broker.publish(
            report.model_dump_json().encode(),
            subjects.delivery(Channel.PANEL.value, report.commune),
            stream=DELIVERIES_STREAM,
            headers={"Nats-Msg-Id": msg_id},
            timeout=5.0,
        )
        metrics.DELIVERIES.labels(Channel.PANEL.value, str(report.outcome)).inc()

    async def watch(self) -> None:
        """Once a second or on change: drop what expired, tell the pages, save the playlist."""
        last = ""
        while True:
            gone = self.playlist.forget_expired(self.sign.clock())
            for notice_id in gone:
                log.info("notice_expired", notice_id=notice_id, commune=self.commune)
            doc = self.current()
            text = json.dumps(doc, sort_keys=True)
            if text != last:
                last = text
                self.web.publish_playlist(doc)
                log.info("playlist_changed", commune=self.commune,
                         notices=[n["id"] for n in doc["notices"]], blank=doc["blank"],
                         synced=doc["synced"], connected=doc["connected"])
            if self.playlist.generation != self._saved_generation:
                # Taken here, on the event loop, then written by a thread: the thread never
                # reads the playlist while an event changes it.
                generation, data = self.playlist.generation, self.playlist.dump()
                await asyncio.to_thread(self.write_snapshot, data)
                self._saved_generation = generation
            await self.sign.wait_change(within=1.0)

    # -- the sign's memory ------------------------------------------------------------

    def restore(self) -> None:
        """Load the playlist saved last time, so a sign restarted offline is not dark."""
        try:
            data = json.loads(self.snapshot_path.read_text(encoding="utf-8"))
            self.playlist.load(data)
        except FileNotFoundError:
            return
        except Exception as error:
            log.warning("playlist_snapshot_unreadable", path=str(self.snapshot_path),
                        error=repr(error)[:200])
            return
        self._saved_generation = self.playlist.generation
        log.info("playlist_restored", commune=self.commune, notices=len(self.playlist.known()))

    def save(self) -> None:
        """Save the playlist now (on the event loop: at shutdown)."""
        generation = self.playlist.generation
        self.write_snapshot(self.playlist.dump())
        self._saved_generation = generation

    def write_snapshot(self, data: Any) -> None:
        directory = self.snapshot_path.parent
        directory.mkdir(parents=True, exist_ok=True)
        # Temp file + rename: a power cut mid-write leaves the old snapshot, not half a file.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".playlist-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, ensure_ascii=False)
            os.replace(tmp, self.snapshot_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def create_app(settings: PanelSettings, panel: Panel | None = None) -> FastAPI:
    """The ASGI app; its lifespan starts and stops the sign."""
    sign = panel or Panel(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sign.start()
        try:
            yield
        finally:
            await sign.stop()

    app = FastAPI(title="Crieur — panneau lumineux", version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.panel = sign
    app.include_router(web.router(sign.web, sign.current))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        # 200 even without NATS: the sign is up and showing its last playlist. 503 while
        # one of its tasks (the display loop...) failed and waits to be started again.
        body = {"status": "ok" if sign.connected else "nats_disconnected",
                "synced": sign.feed.synced.is_set(),
                "commune_registered": sign.commune_registered,
                "tasks_failing": sorted(sign.tasks.failing)}
        if not sign.tasks.healthy:
            body["status"] = "task_failing"
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    async def ready() -> list[str]:
        if not sign.connected:
            return ["nats: not connected"]
        found = await metrics.nats_reasons(sign.broker.connection, [NOTICES_STREAM])
        if not sign.feed.synced.is_set():
            found.append("notices: replay of the stream not finished")
        found += [f"task {name}: failed, restarting" for name in sorted(sign.tasks.failing)]
        return found + metrics.task_reasons(sign.tasks.running())

    app.router.routes.extend(metrics.Readiness(ready).routes())
    return app
