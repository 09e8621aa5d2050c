"""The notices as they stand: many read together (one direct get), live events win."""

from __future__ import annotations

from nats.aio.client import Client

from crieur.channel.current import CurrentNotices, Freshness
from crieur.natsx import MULTI_LAST_MAX
from schemas.notice import NoticeState
from tests.integration.helpers import Mairie, random_insee, wait_for
from tests.integration.kit.conftest import make_notice


async def test_many_notices_of_many_communes_are_read_together(nc: Client) -> None:
    mairie = Mairie(nc)
    # More notices than one batched read names, each of a commune of its own (a
    # département-wide alert): all read from the stream, none from memory.
    notices = [make_notice(random_insee()) for _ in range(MULTI_LAST_MAX + 20)]
    for notice in notices:
        await mairie.publish(notice)
    withdrawn = await mairie.withdraw(notices[3])
    corrected = await mairie.correct(notices[7], title="Tempête : consignes levées")
    never = make_notice(random_insee())  # never published: unknown, not an error

    current = CurrentNotices(nc, nc.jetstream())  # not started: no live events
    wanted = {(n.commune, n.id) for n in (*notices, never)}
    found = await current.get_many(wanted, Freshness.RECENT)

    assert set(found) == {n.id for n in (*notices, never)}
    assert found[never.id] is None
    untouched = [n for n in notices if n.id not in (withdrawn.id, corrected.id)]
    assert [found[n.id] for n in untouched] == untouched
    assert found[withdrawn.id] is not None and found[withdrawn.id].state is NoticeState.WITHDRAWN
    assert found[corrected.id] is not None and found[corrected.id].version == 2
    assert found[corrected.id].title == "Tempête : consignes levées"
    # Read once, they are known: peek (the check right before each send) has them too.
    assert current.peek(notices[-1].id) == notices[-1]


async def test_fresh_reads_the_stream_and_live_events_are_seen(nc: Client) -> None:
    mairie = Mairie(nc)
    first, second = make_notice(random_insee()), make_notice(random_insee())
    current = CurrentNotices(nc, nc.jetstream(), max_age_s=3600.0)
    await current.start()
    try:
        await mairie.publish(first)
        await mairie.publish(second)
        await wait_for(lambda: current.peek(second.id) is not None, what="live events")
        wanted = {(first.commune, first.id), (second.commune, second.id)}
        assert await current.get_many(wanted, Freshness.RECENT) == {first.id: first, second.id: second}
        # Withdrawn while the live subscription is away: only a fresh read sees it.
        await current.stop()
        await mairie.withdraw(first)
        stale = await current.get_many(wanted, Freshness.RECENT)
        assert stale[first.id] is not None and stale[first.id].state is NoticeState.PUBLISHED
        fresh = await current.get_many(wanted, Freshness.FRESH)
        assert fresh[first.id] is not None and fresh[first.id].state is NoticeState.WITHDRAWN
        assert fresh[second.id] == second
    finally:
        await current.stop()
