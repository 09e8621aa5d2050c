"""The sign's NATS side: the NOTICES subscriber that keeps the playlist up to date.

The stream is the truth. On every start an ephemeral ordered consumer delivers the last
event of each notice of the commune (DeliverPolicy.LAST_PER_SUBJECT), then every new one;
nothing durable is kept on the server, so there is nothing to clean up when a sign goes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import structlog
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker
from faststream.nats.annotations import NatsMessage
from nats.js.api import DeliverPolicy
from pydantic import ValidationError

from crieur import metrics
from crieur.bus import IDLE_HEARTBEAT_S, RECONNECT_FOREVER, LibraryConnectionLines, servers
from crieur.channel.preview import Preview, reply_to
from crieur.deadletter import dead_letter
from schemas import subjects
from schemas.events import parse_notice_event
from schemas.streams import NOTICES_STREAM
from schemas.versions import NewerSchemaVersion
from services.panel.playlist import Playlist

log = structlog.get_logger("crieur.panel.handlers")

SERVICE = "panel"


class NoticeFeed:
    """Applies events to the playlist and knows when the replay of the stream is complete."""

    def __init__(self, playlist: Playlist, on_change: Callable[[], None] = lambda: None) -> None:
        self.playlist = playlist
        self.on_change = on_change
        # Set once the first replay is complete: from then on the playlist is the stream's
        # truth, not the snapshot a sign restarted without network came back with.
        self.synced = asyncio.Event()
        self._replayed: set[str] = set()
        self.skipped = 0

    def receive(self, data: bytes, subject: str = "", pending: int | None = None) -> str | None:
        """One message from NOTICES; `pending` is how many more the consumer has for us.

        Returns why the message was skipped (it then deserves a dead letter), else None.
        """
        skipped = None
        try:
            event = parse_notice_event(data)
        except (ValidationError, NewerSchemaVersion) as error:
            # Not JSON, not an event, or a newer schema_version than this sign reads: skip
            # it. Crashing would leave the village square dark for one bad message.
            self.skipped += 1
            skipped = str(error)
            log.error("notice_event_skipped", subject=subject, commune=self.playlist.commune,
                      newer_version=isinstance(error, NewerSchemaVersion), error=skipped[:300])
        else:
            notice = event.notice
            bound = log.bind(notice_id=notice.id, commune=notice.commune)
            if notice.commune != self.playlist.commune:
                bound.warning("notice_event_other_commune", subject=subject)
            else:
                self._replayed.add(notice.id)
                if self.playlist.apply(event):
                    bound.info("notice_event_applied", kind=event.kind, version=notice.version)
                    self.on_change()
        if pending == 0:
            self.mark_synced()
        return skipped

    def mark_synced(self) -> None:
        if self.synced.is_set():
            return
        # Whatever the saved snapshot had that the stream no longer has, goes.
        if self.playlist.retain(self._replayed):
            self.on_change()
        self.synced.set()
        log.info("notices_synced", commune=self.playlist.commune,
                 notices=len(self.playlist.known()))


def _pending(msg: NatsMessage) -> int | None:
    # JetStream metadata rides on the reply subject; the in-memory test broker has none.
    try:
        return int(msg.raw_message.metadata.num_pending)
    except Exception:
        return None


def _sequence(msg: NatsMessage) -> int | None:
    try:
        return int(msg.raw_message.metadata.sequence.stream)
    except Exception:
        return None


def make_broker(nats_url: str) -> NatsBroker:
    # FastStream's own "Received/Processed" lines go to DEBUG: `notice_event_applied` says
    # the same at INFO, with the notice and the commune bound.
    # Its own logger, rendered like every other line (crieur.log), without FastStream's
    # "Connection broken" traceback per reconnect attempt (crieur.bus logs the outage).
    logger = logging.getLogger("crieur.panel.faststream")
    if not any(isinstance(f, LibraryConnectionLines) for f in logger.filters):
        logger.addFilter(LibraryConnectionLines())
    return NatsBroker(servers(nats_url), name="crieur-panel", log_level=logging.DEBUG,
                      logger=logger, **RECONNECT_FOREVER)


def register(broker: NatsBroker, feed: NoticeFeed) -> None:
    """Subscribe the feed to the commune's notices; what it skips becomes a dead letter."""

    @broker.subscriber(
        subjects.commune_notices(feed.playlist.commune),
        # The stream is ensured by crieur.bus with its real settings; FastStream must not
        # declare it with its own defaults.
        stream=JStream(NOTICES_STREAM, declare=False),
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        # An ordered consumer has AckPolicy.NONE on the server: acking would be a wasted
        # round trip, and redelivery is the ordered consumer's job (it resets on a gap).
        ack_policy=AckPolicy.MANUAL,
        # Missing two heartbeats recreates the consumer: back within seconds of a restart.
        idle_heartbeat=IDLE_HEARTBEAT_S,
        title="panel-notices",
    )
    async def on_notice_event(msg: NatsMessage) -> None:
        raw = msg.raw_message
        reason = feed.receive(msg.body, raw.subject, _pending(msg))
        metrics.MESSAGES.labels(SERVICE, "notice_event", "skipped" if reason else "read").inc()
        sequence = _sequence(msg)
        if reason is None or sequence is None:
            return
        try:
            await dead_letter(broker.connection.jetstream(), service=SERVICE,
                              subject=raw.subject, data=msg.body, reason=reason,
                              stream_sequence=sequence)
        except Exception as error:  # NATS away: the log line of receive() still says it
            log.warning("dead_letter_failed", subject=raw.subject, error=repr(error)[:200])


def register_previews(broker: NatsBroker, commune: str, preview: Preview) -> None:
    """Answer staff previews of this commune's drafts (schemas.previews), in a queue group."""

    @broker.subscriber(subjects.channel_preview("panel", commune), queue="panel-preview",
                       title="panel-previews")
    async def on_preview(msg: NatsMessage) -> bytes:
        # The return value is FastStream's reply to the request.
        return await reply_to(msg.body, "panel", preview)
