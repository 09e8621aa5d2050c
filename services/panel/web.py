"""The web sign: a page that looks like the LED sign, for a mairie without the hardware.

`WebSignDriver` is a `PanelDriver` like any other: it keeps the last frame and pushes it,
as a PNG data URL, to every open page over server-sent events, along with the playlist
whenever it changes. The page also lists, as text, what is on the sign: a screen reader
(or a test) reads the notices, not pixels.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from string import Template
from typing import Any

import structlog
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from sse_starlette.sse import EventSourceResponse

from schemas.notice import CATEGORY_LABELS, PARIS
from services.panel import render
from services.panel.playlist import Playlist, heading, is_alert

log = structlog.get_logger("crieur.panel.web")

_PAGE = Template((Path(__file__).parent / "static" / "sign.html").read_text(encoding="utf-8"))
# A page that cannot keep up skips frames rather than piling them up.
_CLIENT_BACKLOG = 32
_ALERT_CLASS = ' class="alert"'


def png_bytes(frame: Image.Image) -> bytes:
    out = io.BytesIO()
    frame.save(out, format="PNG", optimize=False)
    return out.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class WebSignDriver:
    """Keeps the current frame and broadcasts frames and playlists to the open pages."""

    def __init__(self, spec: render.PanelSpec) -> None:
        self.spec = spec
        self.frame: Image.Image = render.render_blank(spec)
        self.slide: render.Slide | None = None
        self._png: bytes | None = None
        self._clients: set[asyncio.Queue[tuple[str, str]]] = set()
        self.playlist_json = "{}"

    async def show(self, frame: Image.Image, slide: render.Slide | None) -> None:
        self.frame, self.slide, self._png = frame, slide, None
        if self._clients:
            self._broadcast("frame", data_url(self.png()))

    def png(self) -> bytes:
        if self._png is None:
            self._png = png_bytes(self.frame)
        return self._png

    def publish_playlist(self, snapshot: dict[str, Any]) -> None:
        self.playlist_json = json.dumps(snapshot, ensure_ascii=False)
        self._broadcast("playlist", self.playlist_json)

    def _broadcast(self, event: str, data: str) -> None:
        for queue in self._clients:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait((event, data))

    async def events(self) -> AsyncIterator[dict[str, str]]:
        """One page's event stream: the current state at once, then every change."""
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=_CLIENT_BACKLOG)
        self._clients.add(queue)
        try:
            yield {"event": "playlist", "data": self.playlist_json}
            yield {"event": "frame", "data": data_url(self.png())}
            while True:
                event, data = await queue.get()
                yield {"event": event, "data": data}
        finally:
            self._clients.discard(queue)


def snapshot(playlist: Playlist, now: datetime, *, name: str, size: str,
             synced: bool, connected: bool, commune_name: str = "") -> dict[str, Any]:
    """The /playlist document: what is on the sign now, in the order it comes."""
    current = playlist.current(now)
    return {
        "commune": playlist.commune,
        "commune_name": commune_name,
        "sign": name,
        "size": size,
        "blank": playlist.is_blank(now),
        "blank_hours": str(playlist.blank_hours) if playlist.blank_hours else "",
        "synced": synced,
        "connected": connected,
        "notices": [
            {
                "id": n.id,
                "version": n.version,
                "category": n.category.value,
                "label": CATEGORY_LABELS[n.category],
                "heading": heading(n),
                "title": n.title,
                "alert": is_alert(n),
                "starts_at": n.starts_at.astimezone(PARIS).isoformat() if n.starts_at else None,
                "ends_at": n.ends_at.astimezone(PARIS).isoformat() if n.ends_at else None,
            }
            for n in current
        ],
        "rotation": [n.id for n in playlist.items(now)],
    }


def _list_items(snap: dict[str, Any]) -> str:
    """The text list, rendered on the server too, so the page says something without JS."""
    return "".join(
        f'<li data-notice-id="{html.escape(n["id"])}"'
        f'{_ALERT_CLASS if n["alert"] else ""}>'
        f'<span class="heading">{html.escape(n["label"])}</span> '
        f'<span class="title">{html.escape(n["title"])}</span></li>'
        for n in snap["notices"]
    )


def _script_json(value: Any) -> str:
    # Inside <script> nothing is entity-decoded: escape what could close the element instead.
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def router(driver: WebSignDriver, current: Callable[[], dict[str, Any]]) -> APIRouter:
    """`current()` gives the /playlist document as of now."""
    api = APIRouter()

    @api.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        snap = current()
        where = snap["commune_name"] or f"commune {snap['commune']}"
        width, height = driver.spec.size
        body = _PAGE.substitute(
            where=html.escape(where),
            width=width,
            height=height,
            frame=data_url(driver.png()),
            items=_list_items(snap),
            empty_hidden="hidden" if snap["notices"] else "",
            playlist=_script_json(snap),
        )
        # The page is live; a cached copy would show yesterday's notices.
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    @api.get("/playlist")
    async def playlist() -> JSONResponse:
        return JSONResponse(current(), headers={"Cache-Control": "no-store"})

    @api.get("/frame.png")
    async def frame(scale: int = Query(1, ge=1, le=16)) -> Response:
        png = driver.png()
        if scale != 1:
            img = driver.frame
            png = png_bytes(img.resize((img.width * scale, img.height * scale),
                                       Image.Resampling.NEAREST))
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @api.get("/events")
    async def events() -> EventSourceResponse:
        return EventSourceResponse(driver.events(), ping=15)

    return api
