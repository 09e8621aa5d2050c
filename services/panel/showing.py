"""The loop that puts the playlist on the sign, frame by frame, and says what it showed.

The show loop asks the playlist what is current at every slide (and, during a slide,
whether the notice is still meant to be there), renders it, and hands each frame to
every driver. Time on screen is added up per notice version and reported on DELIVERIES:
once when a version leaves the sign, and every few minutes while it stays, so the
stream gets a handful of reports a day rather than one per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from PIL import Image

from schemas.deliveries import Channel, DeliveryOutcome, DeliveryReport
from schemas.notice import Notice
from services.panel import render
from services.panel.driver import PanelDriver
from services.panel.playlist import Playlist, heading, is_alert, sign_text

log = structlog.get_logger("crieur.panel.showing")

Clock = Callable[[], datetime]
Key = tuple[str, int]  # (notice id, version)


def slide_for(notice: Notice) -> render.Slide:
    return render.Slide(notice_id=notice.id, heading=heading(notice), text=sign_text(notice),
                        alert=is_alert(notice))


class Sign:
    """The playlist, its clock, and a way to wait until it changes."""

    def __init__(self, playlist: Playlist, clock: Clock) -> None:
        self.playlist = playlist
        self.clock = clock
        self._changed = asyncio.Event()

    def touch(self) -> None:
        """Wake everyone waiting for a change (called on every applied event)."""
        self._changed.set()
        # A fresh event for the next wait; waiters on the old one are already woken.
        self._changed = asyncio.Event()

    async def wait_change(self, within: float) -> bool:
        """True if the playlist changed within `within` seconds."""
        event = self._changed
        try:
            # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that comes
            # as the event is set, and the sign's loop would then outlive its stop.
            async with asyncio.timeout(within):
                await event.wait()
        except TimeoutError:
            return False
        return True


class ThrottledDriver:
    """Passes a frame on at most every `interval_s`, and always the first of a new slide.

    For drivers where each frame costs (a PNG file on an SD card): a scrolling slide makes
    two dozen frames a second, a preview needs one.
    """

    def __init__(self, driver: PanelDriver, interval_s: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.driver = driver
        self.interval_s = interval_s
        self.monotonic = monotonic
        self._last_at = float("-inf")
        self._last_slide: render.Slide | None = None
        self._had_frame = False

    async def show(self, frame: Image.Image, slide: render.Slide | None) -> None:
        now = self.monotonic()
        new_slide = not self._had_frame or slide != self._last_slide
        if new_slide or now - self._last_at >= self.interval_s:
            self._had_frame, self._last_slide, self._last_at = True, slide, now
            await self.driver.show(frame, slide)


@dataclass
class _OnScreen:
    seconds: float = 0.0
    last_report: datetime | None = None


@dataclass
class DeliveryTracker:
    """Adds up time on screen per notice version and decides when to report it."""

    commune: str
    target: str
    interval_s: float
    _screen: dict[Key, _OnScreen] = field(default_factory=dict)

    def add(self, notice: Notice, seconds: float, now: datetime) -> None:
        entry = self._screen.setdefault((notice.id, notice.version), _OnScreen(last_report=now))
        entry.seconds += seconds

    def due(self, now: datetime, on_sign: set[Key]) -> list[DeliveryReport]:
        """Reports to send now: versions that left the sign, and long-running ones."""
        reports = []
        for key, entry in list(self._screen.items()):
            left = key not in on_sign
            periodic = (entry.last_report is not None
                        and (now - entry.last_report).total_seconds() >= self.interval_s)
            if (left or periodic) and entry.seconds > 0:
                reports.append(self._report(key, entry.seconds, now, left))
                entry.seconds = 0.0
                entry.last_report = now
            if left:
                del self._screen[key]
        return reports

    def flush(self, now: datetime) -> list[DeliveryReport]:
        """Everything not yet reported (the sign is shutting down)."""
        return self.due(now, on_sign=set())

    def _report(self, key: Key, seconds: float, now: datetime, left: bool) -> DeliveryReport:
        return DeliveryReport(
            channel=Channel.PANEL, commune=self.commune, notice_id=key[0], version=key[1],
            outcome=DeliveryOutcome.SHOWN, at=now, target=self.target,
            detail="left the sign" if left else "still on the sign",
            duration_s=round(seconds, 3),
        )


Publish = Callable[[DeliveryReport, str], Awaitable[None]]


class Reporter:
    """Sends reports in the background, retrying while NATS is away; never blocks the show.

    Each report gets its Nats-Msg-Id once, so a retry after a lost ack is stored once.
    The queue is bounded: a sign cut off for weeks drops its oldest reports, not its memory.
    """

    def __init__(self, publish: Publish, max_pending: int = 10_000,
                 retry_s: tuple[float, float] = (0.5, 30.0)) -> None:
        self.publish = publish
        self.retry_s = retry_s
        self._queue: deque[tuple[DeliveryReport, str]] = deque(maxlen=max_pending)
        self._wake = asyncio.Event()
        self.sent = 0

    def submit(self, report: DeliveryReport) -> None:
        self._queue.append((report, uuid.uuid4().hex))
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        delay = self.retry_s[0]
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            report, msg_id = self._queue[0]
            try:
                await self.publish(report, msg_id)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("delivery_report_not_sent", notice_id=report.notice_id,
                            commune=report.commune, error=repr(error)[:200], retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_s[1])
                continue
            delay = self.retry_s[0]
            if self._queue and self._queue[0][1] == msg_id:
                self._queue.popleft()
            self.sent += 1
            log.info("delivery_reported", notice_id=report.notice_id, commune=report.commune,
                     version=report.version, duration_s=report.duration_s)

    async def drain(self, within: float) -> None:
        """Try to send what is queued, for at most `within` seconds (at shutdown)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self._queue:
                    report, msg_id = self._queue[0]
                    await self.publish(report, msg_id)
                    self._queue.popleft()


class Show:
    """Cycles the playlist through the drivers, one slide after another."""

    def __init__(
        self,
        sign: Sign,
        spec: render.PanelSpec,
        drivers: Sequence[PanelDriver],
        tracker: DeliveryTracker,
        reporter: Reporter,
        *,
        slide_seconds: float = 8.0,
        scroll_speed: float = 24.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sign = sign
        self.spec = spec
        self.drivers = list(drivers)
        self.tracker = tracker
        self.reporter = reporter
        self.slide_seconds = slide_seconds
        self.frame_s = 1.0 / scroll_speed
        self.monotonic = monotonic
        self.on_air: render.Slide | None = None
        self._blank_shown = False

    async def _put(self, frame: Image.Image, slide: render.Slide | None) -> None:
        for driver in self.drivers:
            try:
                await driver.show(frame, slide)
            except Exception as error:
                log.error("panel_driver_failed", driver=type(driver).__name__,
                          error=repr(error)[:200])

    def _report_due(self) -> None:
        now = self.sign.clock()
        on_sign = {(n.id, n.version) for n in self.sign.playlist.current(now)}
        for report in self.tracker.due(now, on_sign):
            self.reporter.submit(report)

    async def run(self) -> None:
        position = 0
        seen_generation = self.sign.playlist.generation
        while True:
            now = self.sign.clock()
            self._report_due()
            rotation = self.sign.playlist.items(now)
            if self.sign.playlist.generation != seen_generation:
                # Something changed: start the cycle again, so a new alert goes up next.
                seen_generation = self.sign.playlist.generation
                position = 0
            if not rotation:
                if not self._blank_shown:
                    self.on_air = None
                    await self._put(render.render_blank(self.spec), None)
                    self._blank_shown = True
                # Wake up for a new event, or to notice a start time or the end of blank hours.
                await self.sign.wait_change(within=1.0)
                continue
            notice = rotation[position % len(rotation)]
            position += 1
            await self.play(notice)

    async def play(self, notice: Notice) -> float:
        """Show one notice for one slide; returns the seconds it was on screen."""
        slide = slide_for(notice)
        # Frames are rendered one at a time as they are shown: a long title on a big sign
        # would hold tens of MB and block the loop if they were all made up front.
        frames = render.frames(slide, self.spec, step=1)
        first = next(frames)
        second = next(frames, None)
        started = self.monotonic()
        self.on_air = slide
        self._blank_shown = False
        bound = log.bind(notice_id=notice.id, commune=notice.commune)
        bound.debug("slide_on_air", version=notice.version, scrolls=second is not None)
        try:
            if second is None:
                await self._put(first, slide)
                await self._hold(notice, started + self.slide_seconds)
            else:
                # Scroll through at least once, and again until the slide's time is up.
                one_pass: Iterable[Image.Image] = itertools.chain((first, second), frames)
                while self.monotonic() - started < self.slide_seconds:
                    if not await self._scroll(notice, one_pass, slide):
                        break
                    one_pass = render.frames(slide, self.spec, step=1)
        finally:
            seconds = max(0.0, self.monotonic() - started)
            self.tracker.add(notice, seconds, self.sign.clock())
        return seconds

    def _still_on(self, notice: Notice) -> bool:
        return self.sign.playlist.shows(notice.id, notice.version, self.sign.clock())

    async def _hold(self, notice: Notice, until: float) -> None:
        """Keep a still slide up until `until`, or until the notice is gone or replaced."""
        while (left := until - self.monotonic()) > 0:
            # Wake at least every second: expiry and blank hours change nothing on the bus.
            await self.sign.wait_change(within=min(left, 1.0))
            if not self._still_on(notice):
                return

    async def _scroll(self, notice: Notice, frames: Iterable[Image.Image],
                      slide: render.Slide) -> bool:
        """One pass of the scrolling text; False if the notice went meanwhile."""
        generation = self.sign.playlist.generation
        checked = self.monotonic()
        next_at = self.monotonic()
        for frame in frames:
            await self._put(frame, slide)
            next_at += self.frame_s
            if (self.sign.playlist.generation != generation
                    or self.monotonic() - checked >= 1.0):
                generation, checked = self.sign.playlist.generation, self.monotonic()
                if not self._still_on(notice):
                    return False
            # Paced on a schedule, not on "sleep after each frame", so slow drivers
            # do not slow the scroll down more than they must.
            await asyncio.sleep(max(0.0, next_at - self.monotonic()))
        return True
