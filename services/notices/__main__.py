"""`python -m services.notices`: the front door on CRIEUR_HTTP_PORT."""

from __future__ import annotations

import uvicorn

from crieur import log
from services.notices.app import create_app
from services.notices.settings import NoticesSettings


def main() -> None:
    settings = NoticesSettings()
    log.configure(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        # Gives in-flight requests time to finish on SIGTERM.
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
