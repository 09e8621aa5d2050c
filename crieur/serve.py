"""Runs a service's ASGI app the same way for every service: our logging, the garbage
collector's settings, graceful stop."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from crieur import log
from crieur.http_limits import BodyReadTimeout, HttpLimits, header_timeout_protocol
from crieur.settings import CommonSettings, load

# A young collection every 10,000 new container objects rather than CPython's 700: a batch
# of jobs then dies young instead of being promoted to the old generation, whose growth is
# what triggers the full passes.
YOUNG_COLLECTION_EVERY = 10_000


def serve(app: ASGIApp, host: str, port: int, grace_s: int,
          loop: Literal["asyncio", "uvloop"] = "asyncio") -> None:
    """Blocks until SIGINT or SIGTERM; in-flight requests get `grace_s` seconds to finish.

    `loop`: asyncio's own unless a service asks for uvloop (the email service: CPU per email).
    """
    limits = load(HttpLimits, component())
    settle_heap()
    server = uvicorn.Server(server_config(app, host, port, grace_s, limits, loop))
    server.run()
    if not server.started:  # the port taken, the lifespan failed: as uvicorn.run says it
        sys.exit(3)


def server_config(app: ASGIApp, host: str, port: int, grace_s: int, limits: HttpLimits,
                  loop: Literal["asyncio", "uvloop"] = "asyncio") -> uvicorn.Config:
    """How uvicorn serves every service: one place, so the tests serve the same way."""
    # No forwarded header is believed here: uvicorn would trust X-Forwarded-For from
    # 127.0.0.1 (its default, or $FORWARDED_ALLOW_IPS), so anyone reaching the front door
    # through a local process could pick their address. The client address stays the
    # direct peer; the channels read X-Forwarded-For only from CRIEUR_TRUSTED_PROXIES.
    return uvicorn.Config(
        BodyReadTimeout(app, limits.body_timeout_s), host=host, port=port, log_config=None,
        access_log=False, timeout_graceful_shutdown=grace_s, loop=loop, proxy_headers=False,
        # Slow or silent clients cannot hold connections for ever (crieur.http_limits), and
        # past max_connections uvicorn answers 503 rather than queue without bound.
        http=header_timeout_protocol(limits.header_timeout_s),
        limit_concurrency=limits.max_connections, backlog=limits.backlog,
        timeout_keep_alive=limits.keep_alive_s)


def configure_logging(settings: CommonSettings) -> None:
    """Before anything logs: structlog and the libraries' stdlib loggers alike."""
    log.configure(settings.log_level, settings.log_format, component=component())


def component() -> str:
    """The service this process runs: `python -m services.email` is `email`."""
    started = Path(sys.argv[0] if sys.argv else "")
    return started.parent.name if started.name == "__main__.py" else started.stem


def settle_heap() -> None:
    """Once a service's modules and app are built, before it serves: tune the collector.

    Start-up leaves 80,000 to 100,000 objects that the garbage collector tracks and that
    live as long as the process (modules, classes, functions, pydantic's validators), and
    each full collection walked them all. `gc.freeze()` takes them out of every later
    collection (`gc.collect()` first, so no garbage is frozen), and young collections run
    less often (above). What that saved in the email and SMS services is measured in
    docs/benchmark.md ("The garbage collector").
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
