"""Faults: poison messages, a worker killed or stopped mid-fan-out, nats-server restarted.

These run on a nats-server of their own: poison goes on NOTICES, and the server is killed.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from crieur.channel.runner import ChannelRunner
from crieur.channel.settings import ChannelSettings
from crieur.nats_server import NatsServer
from crieur.process import die_with_parent
from schemas import subjects
from tests.conftest import repo_root
from tests.integration.kit.conftest import (
    FAST,
    Mairie,
    StartKit,
    connect,
    dead_letters,
    make_notice,
    random_insee,
    wait_for,
)
from tests.integration.kit.fake import FakeChannel


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats-kit"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def nc(own_server: NatsServer) -> AsyncIterator[Client]:
    client = await connect(own_server.url)
    yield client
    await client.close()


async def test_a_poison_event_is_set_aside_and_the_next_one_goes_out(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    port = FakeChannel({commune: ["a", "b"]})
    runner = await start_kit(port)
    js = nc.jetstream()
    await js.publish(subjects.notice(commune, "poison000001"), b"\xff not json",
                     stream="NOTICES")
    await js.publish(subjects.notice(commune, "poison000002"),
                     b'{"schema_version": 99, "kind": "published"}', stream="NOTICES")
    notice = await Mairie(nc).publish(make_notice(commune))

    await wait_for(lambda: len(port.sent) == 2, what="the good notice's 2 sends")
    assert {s.notice_id for s in port.sent} == {notice.id}
    letters = await dead_letters(nc, f"{runner.name}-fanout")
    assert {letter.subject for letter in letters} == {
        subjects.notice(commune, "poison000001"), subjects.notice(commune, "poison000002")}
    assert all("not a notice event" in letter.reason for letter in letters)


async def test_a_poison_job_is_set_aside_and_the_next_job_is_sent(
        nc: Client, start_kit: StartKit) -> None:
    commune = random_insee()
    port = FakeChannel({commune: ["a"]})
    runner = await start_kit(port)
    js = nc.jetstream()
    await js.publish(subjects.jobs(runner.name, commune), b"{not a job", stream="JOBS")
    await Mairie(nc).publish(make_notice(commune))

    await wait_for(lambda: len(port.sent) == 1, what="the good job")
    letters = await dead_letters(nc, f"{runner.name}-worker")
    assert len(letters) == 1 and "not a job" in letters[0].reason


def _start_proc(url: str, name: str, commune: str, n: int, out: Path,
                rate: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.kit.fakeproc", "--nats", url, "--name", name,
         "--commune", commune, "--recipients", str(n), "--out", str(out), "--rate", str(rate)],
        cwd=repo_root(), env=os.environ | {"CRIEUR_LOG_FORMAT": "json"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)


def _lines(out: Path) -> list[str]:
    return out.read_text().splitlines() if out.exists() else []


async def _until_consumer_exists(nc: Client, name: str) -> None:
    js = nc.jetstream()
    for _ in range(200):
        try:
            await js.consumer_info("NOTICES", f"{name}-fanout")
            await js.consumer_info("JOBS", f"{name}-worker")
            return
        except nats.js.errors.NotFoundError:
            await asyncio.sleep(0.1)
    raise AssertionError("the channel process did not start")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
async def test_a_worker_stopped_mid_fan_out_loses_nothing(
        nc: Client, own_server: NatsServer, tmp_path: Path, sig: int) -> None:
    commune, name, n = random_insee(), f"proc-{uuid.uuid4().hex[:6]}", 1000
    out = tmp_path / "sent.txt"
    proc = _start_proc(own_server.url, name, commune, n, out, rate=250)
    try:
        await _until_consumer_exists(nc, name)
        await Mairie(nc).publish(make_notice(commune))
        await wait_for(lambda: len(_lines(out)) >= 200, within_s=60, what="200 sends")
        proc.send_signal(sig)
        proc.wait(30)
        at_stop = len(_lines(out))
        assert at_stop < n, "stopped too late to prove anything"
        proc = _start_proc(own_server.url, name, commune, n, out, rate=0)
        await wait_for(lambda: len(set(_lines(out))) == n, within_s=90, what="every send")
        await asyncio.sleep(1.0)
    finally:
        proc.kill()
        proc.wait()
    counts = Counter(_lines(out))
    duplicates = sum(c - 1 for c in counts.values())
    assert len(counts) == n
    if sig == signal.SIGTERM:
        assert duplicates == 0  # a graceful stop drains: nothing twice
    else:
        # At most the sends in flight (concurrency 4) and those whose sent records were
        # still lingering to be written in a group (250 a second for the linger).
        linger_s = ChannelSettings().channel_record_linger_s
        assert duplicates <= 4 + math.ceil(250 * linger_s)


async def test_nats_server_restarted_mid_fan_out_loses_nothing(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        nc = await connect(server.url)
        commune = random_insee()
        port = FakeChannel({commune: [f"r{i}" for i in range(600)]}, rate_per_s=200)
        runner = ChannelRunner(port, ChannelSettings(**FAST), nc, name="restart")
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(runner.ready.wait(), 20)
        await Mairie(nc).publish(make_notice(commune))
        await wait_for(lambda: len(port.sent) >= 100, what="100 sends")
        server.kill()
        await asyncio.sleep(2.0)
        server.start()
        await wait_for(lambda: len({s.recipient for s in port.sent}) == 600, within_s=120,
                       what="every recipient after the restart")
        runner.stop()
        await asyncio.wait_for(task, 30)
        await nc.close()
    finally:
        server.stop()
    counts = Counter(s.recipient for s in port.sent)
    assert len(counts) == 600
    # A send whose record the dead server never stored may be repeated, nothing else.
    assert sum(c - 1 for c in counts.values()) <= 8
