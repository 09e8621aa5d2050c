"""`python -m services.sms`: the SMS channel (kit worker and fan-out, routes, /healthz)."""

from __future__ import annotations

from crieur.channel.manifest import main
from services.sms.manifest import MANIFEST

if __name__ == "__main__":
    main(MANIFEST)
