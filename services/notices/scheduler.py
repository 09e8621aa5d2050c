"""Publishes scheduled notices when their time comes, even after a restart.

The schedule lives in the `schedule` bucket, not in memory, so a notice due while the
service was down goes out as soon as it is back. Several front doors may run this loop:
the Nats-Msg-Id of the publication makes the second one a no-op.

The same loop deletes, hourly, the attachments no notice names (services/notices/
attachments.py): a second front door doing it too deletes nothing more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

import structlog

from schemas import NoticeState
from services.notices import attachments, lifecycle
from services.notices.notices import ConcurrentChange
from services.notices.store import NatsStore

log = structlog.get_logger("crieur.notices.scheduler")

# How often attachments no notice names are looked for (the first time, this long after
# the start: a front door restarted often is not a sweep each time).
ORPHAN_SWEEP_EVERY_S = 3600.0


async def publish_due_notices(store: NatsStore, now: datetime) -> int:
    """Publish every scheduled notice whose publish_at has passed; returns how many."""
    published = 0
    for notice in store.all_scheduled():
        # A notice pending approval waits in the same bucket until someone approves it.
        if notice.state is not NoticeState.SCHEDULED:
            continue
        if notice.publish_at is None or notice.publish_at > now:
            continue
        try:
            await store.append(lifecycle.publish_due(notice, now), expected_last_seq=0)
            published += 1
        except ConcurrentChange:
            # Already on the stream (another front door, or a crash before unscheduling).
            pass
        await store.unschedule(notice.id)
        log.info("scheduled_notice_published", notice_id=notice.id, commune=notice.commune)
    return published


async def sweep_orphan_attachments(store: NatsStore, now: datetime) -> int:
    """Delete the attachments that neither a notice's latest version nor a notice waiting
    in the schedule (scheduled, pending approval) names, once old enough."""
    referenced = store.view.attachment_ids() | {
        a.id for notice in store.all_scheduled() for a in notice.attachments if a.id}
    return await attachments.sweep_unreferenced(store.js, referenced, now)


async def run(store: NatsStore, clock: Callable[[], datetime], interval_s: float) -> None:
    last_sweep = time.monotonic()
    while True:
        try:
            await publish_due_notices(store, clock())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("schedule_check_failed")
        if time.monotonic() - last_sweep >= ORPHAN_SWEEP_EVERY_S:
            last_sweep = time.monotonic()
            try:
                await sweep_orphan_attachments(store, clock())
            except asyncio.CancelledError:
                raise
            except Exception as error:  # NATS away: the next round does it
                log.warning("attachment_sweep_failed", error=repr(error)[:200])
        await asyncio.sleep(interval_s)
