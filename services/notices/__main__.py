"""`python -m services.notices`: the front door on CRIEUR_HTTP_PORT."""

from __future__ import annotations

from crieur.serve import configure_logging, serve
from crieur.settings import load
from services.notices.app import create_app
from services.notices.settings import NoticesSettings


def main() -> None:
    settings = load(NoticesSettings, "notices")
    configure_logging(settings)
    serve(create_app(settings), settings.http_host, settings.http_port, grace_s=10)


if __name__ == "__main__":
    main()
