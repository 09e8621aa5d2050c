"""`python -m tests.integration.kit.fakeproc`: the fake channel in its own process (kill tests)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import nats

from crieur.bus import RECONNECT_FOREVER
from crieur.channel.runner import ChannelRunner
from crieur.channel.settings import ChannelSettings
from tests.integration.kit.fake import FakeChannel


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nats", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--commune", required=True)
    parser.add_argument("--recipients", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=0)
    args = parser.parse_args()
    port = FakeChannel({args.commune: [f"r{i}" for i in range(args.recipients)]},
                       out_file=args.out, rate_per_s=args.rate or None)
    settings = ChannelSettings(channel_ack_wait_s=3, channel_backoff_s=0.2,
                               channel_batch=64)
    nc = await nats.connect(args.nats, **RECONNECT_FOREVER)
    runner = ChannelRunner(port, settings, nc, name=args.name)
    runner.stop_on_signals()
    await runner.run()
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(main())
