"""The NOTICES subscriber, on FastStream's in-memory broker: events in, playlist state out."""

from __future__ import annotations

import json
from datetime import timedelta

from faststream.nats import TestNatsBroker

from schemas import Category, NoticeCorrected, subjects
from services.panel.handlers import NoticeFeed, make_broker, register
from services.panel.playlist import Playlist
from tests.unit.panel.helpers import COMMUNE, NOON, notice, published, withdrawn


def setup() -> tuple[NoticeFeed, list[int]]:
    changes: list[int] = []
    feed = NoticeFeed(Playlist(COMMUNE), on_change=lambda: changes.append(1))
    return feed, changes


async def test_events_in_playlist_out() -> None:
    feed, changes = setup()
    broker = make_broker("nats://127.0.0.1:1")  # never dialled: TestNatsBroker patches it
    register(broker, feed)
    road = notice("route000", Category.TRAVAUX)
    fair = notice("foire000", Category.EVENEMENT, published=NOON - timedelta(hours=3))
    async with TestNatsBroker(broker) as test:
        for n in (road, fair):
            await test.publish(published(n).model_dump_json(), subjects.notice(COMMUNE, n.id),
                               stream="NOTICES")
        assert [n.id for n in feed.playlist.items(NOON)] == ["route000", "foire000"]

        v2 = notice("route000", Category.TRAVAUX, version=2, title="Route rouverte demain")
        await test.publish(NoticeCorrected(occurred_at=NOON, notice=v2).model_dump_json(),
                           subjects.notice(COMMUNE, road.id), stream="NOTICES")
        assert feed.playlist.get("route000") == v2

        await test.publish(withdrawn(fair).model_dump_json(), subjects.notice(COMMUNE, fair.id),
                           stream="NOTICES")
        assert [n.id for n in feed.playlist.items(NOON)] == ["route000"]
    assert len(changes) == 4, "every applied event wakes the sign"


async def test_a_poison_message_is_skipped_and_the_next_one_still_counts() -> None:
    feed, changes = setup()
    broker = make_broker("nats://127.0.0.1:1")
    register(broker, feed)
    subject = subjects.notice(COMMUNE, "route000")
    future = published(notice("route000")).model_dump(mode="json") | {"schema_version": 99}
    async with TestNatsBroker(broker) as test:
        await test.publish(b"\xff\xfe not json", subject, stream="NOTICES")
        await test.publish({"kind": "published", "notice": {"id": "x"}}, subject,
                           stream="NOTICES")
        await test.publish(future, subject, stream="NOTICES")
        assert feed.skipped == 3
        assert feed.playlist.known() == []
        await test.publish(published(notice("route000")).model_dump_json(), subject,
                           stream="NOTICES")
    assert [n.id for n in feed.playlist.items(NOON)] == ["route000"]
    assert changes == [1]


def test_the_end_of_the_replay_replaces_the_saved_snapshot() -> None:
    feed, _ = setup()
    # What a sign restarted offline came back with...
    feed.playlist.apply(published(notice("ancien00")))
    feed.playlist.apply(published(notice("garde000")))
    # ...then the stream replays: "garde000" is still there, "ancien00" is not.
    feed.receive(published(notice("garde000")).model_dump_json().encode(), pending=1)
    assert not feed.synced.is_set()
    feed.receive(published(notice("nouveau0")).model_dump_json().encode(), pending=0)
    assert feed.synced.is_set()
    assert sorted(n.id for n in feed.playlist.known()) == ["garde000", "nouveau0"]
    # After the replay, new events only add: nothing else is forgotten.
    feed.receive(published(notice("encore00")).model_dump_json().encode(), pending=0)
    assert len(feed.playlist.known()) == 3


def test_an_event_of_another_commune_is_ignored() -> None:
    feed, changes = setup()
    feed.receive(published(notice("ailleurs", commune="21231")).model_dump_json().encode())
    assert feed.playlist.known() == [] and changes == []


async def test_an_older_sign_applies_an_event_with_fields_it_does_not_know() -> None:
    feed, changes = setup()
    broker = make_broker("nats://127.0.0.1:1")
    register(broker, feed)
    event = published(notice("route000")).model_dump(mode="json")
    # What a newer front door might add: a field on the event, the notice and a link.
    event["trace_id"] = "abc"
    event["notice"]["audience"] = "riverains"
    event["notice"]["links"] = [{"url": "https://mairie.example/arrete.pdf", "label": "Arrêté",
                                 "lang": "fr"}]
    async with TestNatsBroker(broker) as test:
        await test.publish(event, subjects.notice(COMMUNE, "route000"), stream="NOTICES")
    assert feed.skipped == 0
    assert [n.id for n in feed.playlist.items(NOON)] == ["route000"]
    assert feed.playlist.get("route000").links[0].label == "Arrêté"  # type: ignore[union-attr]
    assert changes == [1]


def test_a_newer_breaking_version_is_skipped_with_its_reason() -> None:
    feed, changes = setup()
    future = published(notice("route000")).model_dump(mode="json") | {"schema_version": 2}
    reason = feed.receive(json.dumps(future).encode(), "notices.70299.route000", pending=0)
    assert reason is not None and "schema_version 2" in reason
    assert feed.skipped == 1 and feed.playlist.known() == [] and changes == []
    assert feed.receive(published(notice("route000")).model_dump_json().encode()) is None
