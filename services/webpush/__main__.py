"""`python -m services.webpush`: the Web Push channel (kit worker and fan-out, routes)."""

from __future__ import annotations

from crieur.channel.manifest import main
from services.webpush.manifest import MANIFEST

if __name__ == "__main__":
    main(MANIFEST)
