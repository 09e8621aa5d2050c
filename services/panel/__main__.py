"""`python -m services.panel`: the LED sign and its web page on CRIEUR_PANEL_HTTP_PORT."""

from __future__ import annotations

from crieur.serve import configure_logging, serve
from crieur.settings import load
from services.panel.app import create_app
from services.panel.settings import PanelSettings


def main() -> None:
    settings = load(PanelSettings, "panel")
    configure_logging(settings)
    # Open pages hold an event stream each: do not wait for them long on SIGTERM.
    serve(create_app(settings), settings.panel_http_host, settings.panel_http_port,
          grace_s=3)


if __name__ == "__main__":
    main()
