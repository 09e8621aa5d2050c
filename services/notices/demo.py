"""`python -m services.notices.demo <data dir>`: the demo commune and staff token (`make run`).

Registers Lavoncourt (70299) and keeps one staff token for it in `<data dir>/demo-staff-token`,
the same one every run while it is still valid.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from services.notices.store import NatsStore

DEMO_INSEE = "70299"
DEMO_NAME = "Lavoncourt"
DEMO_STAFF = "Secrétariat de mairie (démo)"
TOKEN_FILE = "demo-staff-token"


async def seed_demo(nats_url: str, data_dir: Path) -> str:
    """Register the demo commune and return a staff token for it, the same one every run."""
    store = await NatsStore.connect(nats_url, name="crieur-demo")
    try:
        if await store.commune(DEMO_INSEE) is None:
            await store.add_commune(DEMO_INSEE, DEMO_NAME)
        token_file = data_dir / TOKEN_FILE
        if token_file.exists():
            token = token_file.read_text().strip()
            if await store.staff_for_token(token) is not None:
                return token
        _, token = await store.add_staff(DEMO_STAFF, (DEMO_INSEE,))
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        return token
    finally:
        await store.close()


def main() -> int:
    data_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CRIEUR_DATA_DIR", "var"))
    data_dir.mkdir(parents=True, exist_ok=True)
    token = asyncio.run(
        seed_demo(os.environ.get("CRIEUR_NATS_URL", "nats://127.0.0.1:4222"), data_dir)
    )
    # The launcher reads this line to say where to go and what to publish with.
    print(json.dumps({"insee": DEMO_INSEE, "name": DEMO_NAME, "token": token}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
