"""`python -m services.email`: the email channel (fan-out, SMTP worker, resident routes)."""

from __future__ import annotations

from crieur.serve import configure_logging, serve
from crieur.settings import load
from services.email.app import create_app
from services.email.settings import EmailSettings


def main() -> None:
    # An impossible configuration is refused at start-up, in one readable message.
    settings = load(EmailSettings, "email")
    configure_logging(settings)
    # uvloop: the sends' many small socket reads and writes cost less CPU on libuv.
    serve(create_app(settings), settings.email_http_host, settings.email_http_port, grace_s=3,
          loop="uvloop")


if __name__ == "__main__":
    main()
