"""Runs a service's ASGI app the same way for every service: our logging, graceful stop."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from crieur import log
from crieur.settings import CommonSettings


def serve(app: ASGIApp, host: str, port: int, grace_s: int,
          loop: Literal["asyncio", "uvloop"] = "asyncio") -> None:
    """Blocks until SIGINT or SIGTERM; in-flight requests get `grace_s` seconds to finish.

    `loop`: asyncio's own unless a service asks for uvloop (the email service: CPU per email).
    """
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False,
                timeout_graceful_shutdown=grace_s, loop=loop)


def configure_logging(settings: CommonSettings) -> None:
    """Before anything logs: structlog and the libraries' stdlib loggers alike."""
    log.configure(settings.log_level, settings.log_format, component=component())


def component() -> str:
    """The service this process runs: `python -m services.email` is `email`."""
    started = Path(sys.argv[0] if sys.argv else "")
    return started.parent.name if started.name == "__main__.py" else started.stem
