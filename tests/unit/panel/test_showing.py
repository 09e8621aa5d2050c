"""The show loop puts the playlist on a driver, and time on screen is reported sparingly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from PIL import Image

from schemas import Category
from schemas.deliveries import DeliveryOutcome, DeliveryReport
from services.panel import render
from services.panel.playlist import Playlist
from services.panel.render import PanelSpec, Slide
from services.panel.showing import DeliveryTracker, Reporter, Show, Sign
from tests.unit.panel.helpers import COMMUNE, NOON, Clock, notice, published, withdrawn


async def until(check: Callable[[], bool]) -> None:
    # Polling is the point: the show loop has no hook for tests to wait on.
    while not check():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


class Recorder:
    def __init__(self) -> None:
        self.slides: list[str | None] = []

    async def show(self, frame: Image.Image, slide: Slide | None) -> None:
        assert frame.size == (128, 32)
        self.slides.append(slide.notice_id if slide else None)


def test_tracker_reports_when_a_version_leaves_and_every_interval() -> None:
    tracker = DeliveryTracker(COMMUNE, "panneau", interval_s=300)
    road = notice("route000", Category.TRAVAUX)
    tracker.add(road, 8.0, NOON)
    assert tracker.due(NOON + timedelta(seconds=10), {("route000", 1)}) == []
    tracker.add(road, 8.0, NOON + timedelta(seconds=20))
    [periodic] = tracker.due(NOON + timedelta(minutes=5), {("route000", 1)})
    assert (periodic.duration_s, periodic.outcome) == (16.0, DeliveryOutcome.SHOWN)
    tracker.add(road, 4.0, NOON + timedelta(minutes=6))
    [final] = tracker.due(NOON + timedelta(minutes=6), set())
    assert (final.notice_id, final.version, final.duration_s) == ("route000", 1, 4.0)
    assert final.detail == "left the sign"
    assert tracker.due(NOON + timedelta(minutes=20), set()) == []


async def test_the_show_cycles_and_drops_a_withdrawn_notice_at_once() -> None:
    clock = Clock(NOON)
    playlist = Playlist(COMMUNE)
    sign = Sign(playlist, clock)
    driver = Recorder()
    sent: list[DeliveryReport] = []

    async def publish(report: DeliveryReport, msg_id: str) -> None:
        sent.append(report)

    reporter = Reporter(publish)
    show = Show(sign, PanelSpec(), [driver], DeliveryTracker(COMMUNE, "panneau", 300), reporter,
                slide_seconds=0.05, scroll_speed=2000)
    alert = notice("alerte00", Category.ALERTE, title="Orage")
    road = notice("route000", Category.TRAVAUX, title="Route fermée")
    playlist.apply(published(alert))
    playlist.apply(published(road))
    tasks = [asyncio.create_task(show.run()), asyncio.create_task(reporter.run())]
    try:
        async with asyncio.timeout(20):
            # The road notice has had one whole slide: its time on screen is then more than
            # the instant between its first frame and the withdrawal (under a loaded CI,
            # that instant was under 0.5 ms and reported as 0.0 s).
            await until(lambda: "alerte00" in driver.slides and "route000" in driver.slides[
                :-1])
            playlist.apply(withdrawn(road))
            sign.touch()
            await asyncio.sleep(0.01)
            seen = len(driver.slides)
            await until(lambda: len(driver.slides) >= seen + 5)
            await until(lambda: any(r.notice_id == "route000" for r in sent))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # The slide in flight when the withdrawal came may end; after it, never again.
    assert "route000" not in driver.slides[seen + 1:]
    [report] = [r for r in sent if r.notice_id == "route000"]
    assert report.duration_s is not None and report.duration_s >= 0.05  # one whole slide


async def test_a_scrolling_slide_is_rendered_as_it_is_shown(monkeypatch: Any) -> None:
    made = 0
    real = render.frames

    def counted(*args: Any, **kwargs: Any) -> Iterator[Image.Image]:
        nonlocal made
        for frame in real(*args, **kwargs):
            made += 1
            yield frame

    monkeypatch.setattr(render, "frames", counted)
    made_when_shown: list[int] = []

    class Counting(Recorder):
        async def show(self, frame: Image.Image, slide: Slide | None) -> None:
            made_when_shown.append(made)

    playlist = Playlist(COMMUNE)
    sign = Sign(playlist, Clock(NOON))
    show = Show(sign, PanelSpec(), [Counting()], DeliveryTracker(COMMUNE, "panneau", 300),
                Reporter(lambda r, m: asyncio.sleep(0)), slide_seconds=0.01, scroll_speed=5000)
    long = notice("long0000", Category.TRAVAUX, title="Route " * 20)
    playlist.apply(published(long))
    await show.play(long)
    assert len(made_when_shown) > 100, "a long title scrolls through many frames"
    # Each frame was made just before it was shown (one ahead at most), not all at once.
    assert all(made <= shown + 2 for shown, made in enumerate(made_when_shown, start=1))
