"""A job fetched twice in one batch is sent once.

Found by the chaos suite (scenario 4): with sends slower than ack_wait, messages nats-py
had left in its queue after a fetch were handed out again, and the next batch held both
copies of those jobs; neither had a sent record yet, so both went out.
"""

from __future__ import annotations

import asyncio
import uuid

from nats.aio.client import Client

from crieur.bus import ensure_streams
from crieur.channel.runner import ChannelRunner
from crieur.channel.settings import ChannelSettings
from schemas import subjects
from schemas.events import EventKind
from schemas.jobs import Job
from schemas.streams import CHANNEL_STREAMS
from tests.integration.kit.conftest import FAST, Mairie, make_notice, random_insee, wait_for
from tests.integration.kit.fake import FakeChannel


async def test_two_copies_of_a_job_in_one_batch_make_one_send(nc: Client) -> None:
    commune = random_insee()
    port = FakeChannel({commune: []})
    name = f"kit-{uuid.uuid4().hex[:8]}"
    notice = await Mairie(nc).publish(make_notice(commune))
    js = nc.jetstream()
    await ensure_streams(js, CHANNEL_STREAMS)
    # Two messages carrying the same jobs, queued before the worker starts, so that its
    # first batch holds both copies of each.
    recipients = [f"r{i}" for i in range(5)]
    for copy in range(2):
        for recipient in recipients:
            job = Job(channel=port.channel, commune=commune, notice_id=notice.id,
                      version=notice.version, kind=EventKind.PUBLISHED, recipient=recipient)
            await js.publish(subjects.jobs(name, commune), job.model_dump_json().encode(),
                             stream="JOBS", headers={"Nats-Msg-Id": f"{job.key}:{copy}"})
    worker = ChannelRunner(port, ChannelSettings(**FAST), nc, name=name, fanout=False)
    task = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: len(port.sent) >= 5, within_s=30, what="5 sends")
        # The copy left unacked comes back after ack_wait (3 s) and is found already sent.
        await asyncio.sleep(2 * FAST["channel_ack_wait_s"])
        assert sorted(s.recipient for s in port.sent) == recipients
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
