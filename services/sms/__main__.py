"""`python -m services.sms`: the SMS channel (kit worker and fan-out, routes, /healthz)."""

from __future__ import annotations

import asyncio

from crieur.serve import configure_logging
from services.sms.app import main
from services.sms.settings import SmsSettings


def run() -> None:
    settings = SmsSettings()
    configure_logging(settings)
    asyncio.run(main(settings))


if __name__ == "__main__":
    run()
