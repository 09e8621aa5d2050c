"""`python -m services.email`: the email channel (fan-out, SMTP worker, resident routes)."""

from __future__ import annotations

from crieur.channel.manifest import main
from services.email.manifest import MANIFEST

if __name__ == "__main__":
    main(MANIFEST)
