"""The sink-wide pause follows the backoff schedule per round of sends, not per failed send.

Found by the chaos suite (scenario 3): 8 SMS in flight when the provider went down failed
together, and counting each as one more step paused the sink for base × 2^7 after an
outage of seconds.
"""

from __future__ import annotations

import asyncio
import uuid

from nats.aio.client import Client

from crieur.channel.runner import ChannelRunner
from crieur.channel.settings import ChannelSettings
from tests.integration.kit.conftest import (
    FAST,
    Mairie,
    make_notice,
    random_insee,
    wait_for,
    wait_planned,
)
from tests.integration.kit.fake import FakeChannel


async def test_sends_failing_together_are_one_step_of_the_schedule(nc: Client) -> None:
    commune = random_insee()
    recipients = [f"r{i}" for i in range(8)]
    port = FakeChannel({commune: recipients}, transient={r: 1 for r in recipients},
                       concurrency=8)
    # One step is 1 s; eight steps would be 1 × 2^7, capped at 120 s.
    settings = ChannelSettings(**(FAST | {"channel_backoff_s": 1.0,
                                          "channel_backoff_max_s": 120.0}))
    name = f"kit-{uuid.uuid4().hex[:8]}"
    # The jobs are all queued before the worker starts, so its first batch holds all 8
    # and their sends fail together, as a provider going down under a fan-out does.
    planner = ChannelRunner(port, settings, nc, name=name, worker=False)
    worker = ChannelRunner(port, settings, nc, name=name, fanout=False)
    tasks = [asyncio.create_task(planner.run())]
    try:
        await asyncio.wait_for(planner.ready.wait(), 20)
        await Mairie(nc).publish(make_notice(commune))
        # The fan-out acks its event once every job is stored (in one group here).
        await wait_planned(nc, name)
        tasks.append(asyncio.create_task(worker.run()))

        await wait_for(lambda: len(port.attempts) == 8, within_s=30, what="the first round")
        # One step (1 s, and the jobs' own backoff, 1 s less jitter), nowhere near the two
        # minutes eight steps would make.
        await wait_for(lambda: len(port.sent) == 8, within_s=45, what="all 8 after one pause")
        assert all(len(t) == 2 for t in port.attempts.values())
    finally:
        planner.stop()
        worker.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
