"""`python -m services.push`: the push channel; /healthz on CRIEUR_PUSH_HTTP_PORT."""

from __future__ import annotations

from crieur.channel.manifest import main
from services.push.manifest import MANIFEST

if __name__ == "__main__":
    main(MANIFEST)
