"""`python -m services.panel`: the LED sign and its web page on CRIEUR_PANEL_HTTP_PORT."""

from __future__ import annotations

import uvicorn

from crieur import log
from services.panel.app import create_app
from services.panel.settings import PanelSettings


def main() -> None:
    settings = PanelSettings()
    log.configure(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.panel_http_host,
        port=settings.panel_http_port,
        log_config=None,
        access_log=False,
        # Open pages hold an event stream each: do not wait for them long on SIGTERM.
        timeout_graceful_shutdown=3,
    )


if __name__ == "__main__":
    main()
