"""`python -m services.push`: the push channel; /healthz on CRIEUR_PUSH_HTTP_PORT."""

from __future__ import annotations

import sys

from crieur.serve import configure_logging, serve
from crieur.settings import load
from services.push.app import create_app
from services.push.settings import PushSettings


def main() -> int:
    # Refused at start-up, in one clear line, not at the first notice.
    settings = load(PushSettings, "push")
    configure_logging(settings)
    serve(create_app(settings), settings.push_http_host, settings.push_http_port, grace_s=25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
