"""`python -m services.sms`: the SMS channel (kit worker and fan-out, routes, /healthz)."""

from __future__ import annotations

import asyncio

import uvloop

from crieur.serve import configure_logging, settle_heap
from crieur.settings import load
from services.sms.app import main
from services.sms.settings import SmsSettings


def run() -> None:
    settings = load(SmsSettings, "sms")
    configure_logging(settings)
    settle_heap()  # as crieur.serve.serve does for the services it runs
    # uvloop: the sends' many small socket reads and writes (HTTP and NATS) cost less
    # CPU on libuv (as in the email service).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(settings))


if __name__ == "__main__":
    run()
