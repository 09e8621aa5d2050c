"""A fan-out durable lost while the channel runs (deleted by a client) is made again where
the lost one stood, never from NEW: the notices published meanwhile are still planned."""

from __future__ import annotations

from nats.aio.client import Client
from nats.js.api import DeliverPolicy

from schemas.notice import Category
from tests.integration.kit.conftest import (
    Mairie,
    StartKit,
    make_notice,
    random_insee,
    wait_for,
)
from tests.integration.kit.fake import FakeChannel


async def test_a_deleted_fan_out_resumes_and_plans_what_was_published_meanwhile(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    port = FakeChannel({commune: ["r1", "r2"]})
    runner = await start_kit(port)
    mairie = Mairie(nc)

    def sent_to(notice_id: str) -> list[str]:
        return sorted(s.recipient for s in port.sent if s.notice_id == notice_id)

    before = await mairie.publish(make_notice(commune, category=Category.INFORMATION))
    await wait_for(lambda: sent_to(before.id) == ["r1", "r2"], within_s=30,
                   what="the notice published before the loss")
    js = nc.jetstream()
    lost = [f"{runner.name}-fanout", f"{runner.name}-alert-fanout"]
    for name in lost:
        assert await js.delete_consumer("NOTICES", name)
    # Published while the durables are missing: a durable made again from NEW skips them.
    meanwhile = [await mairie.publish(make_notice(commune, category=category))
                 for category in (Category.INFORMATION, Category.ALERTE)]

    await wait_for(lambda: all(sent_to(n.id) == ["r1", "r2"] for n in meanwhile),
                   within_s=60, what="the notices published while the fan-out was missing")
    for name in lost:
        info = await js.consumer_info("NOTICES", name)
        assert DeliverPolicy(info.config.deliver_policy) is DeliverPolicy.BY_START_SEQUENCE, name
    # Resuming replays at most what was already planned, and nothing is sent twice.
    assert sent_to(before.id) == ["r1", "r2"]


async def test_a_new_channel_still_starts_from_new_events(
        nc: Client, start_kit: StartKit) -> None:
    """Resuming needs a kept place: a channel's first start does not mail the history."""
    commune = random_insee()
    old = await Mairie(nc).publish(make_notice(commune, category=Category.INFORMATION))
    port = FakeChannel({commune: ["r1"]})
    runner = await start_kit(port)
    fresh = await Mairie(nc).publish(make_notice(commune, category=Category.INFORMATION))
    await wait_for(lambda: any(s.notice_id == fresh.id for s in port.sent), within_s=30,
                   what="the notice published after the start")
    assert not any(s.notice_id == old.id for s in port.sent)
    info = await nc.jetstream().consumer_info("NOTICES", f"{runner.name}-fanout")
    assert DeliverPolicy(info.config.deliver_policy) is DeliverPolicy.NEW
