"""`python -m services.email`: the email channel (fan-out, SMTP worker, resident routes)."""

from __future__ import annotations

from crieur.serve import configure_logging, serve
from services.email.app import create_app
from services.email.settings import EmailSettings


def main() -> None:
    settings = EmailSettings()
    configure_logging(settings)
    serve(create_app(settings), settings.email_http_host, settings.email_http_port, grace_s=3)


if __name__ == "__main__":
    main()
