"""`python -m services.notices.demo <data dir>`: the demo commune and staff token (`make run`).

Registers Lavoncourt (70299) and keeps one staff token for it in `<data dir>/demo-staff-token`,
the same one every run while it is still valid, and the demo staff member's password for the
staff pages in `<data dir>/demo-staff-password`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from pathlib import Path

from services.notices.staff import login_of
from services.notices.store import NatsStore

DEMO_INSEE = "70299"
DEMO_NAME = "Lavoncourt"
DEMO_STAFF = "Secrétariat de mairie (démo)"
TOKEN_FILE = "demo-staff-token"
PASSWORD_FILE = "demo-staff-password"


async def seed_password(store: NatsStore, data_dir: Path) -> tuple[str, str]:
    """The demo staff member's login and password, the same every run (kept 0600)."""
    password_file = data_dir / PASSWORD_FILE
    if password_file.exists():
        password = password_file.read_text().strip()
        account = await store.staff_registry.account(login_of(DEMO_STAFF))
        if account is not None and account.revoked_at is None and \
                await store.staff_registry.verify(account.login, password) is not None:
            return account.login, password
    password = secrets.token_urlsafe(12)
    account = await store.staff_registry.set_password(DEMO_STAFF, password, (DEMO_INSEE,))
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return account.login, password


async def seed_demo(nats_url: str, data_dir: Path) -> dict[str, str]:
    """Register the demo commune; its staff token, login and password, the same every run."""
    store = await NatsStore.connect(nats_url, name="crieur-demo")
    try:
        if await store.commune_registry.get(DEMO_INSEE) is None:
            await store.commune_registry.add(DEMO_INSEE, DEMO_NAME)
        token_file = data_dir / TOKEN_FILE
        token = token_file.read_text().strip() if token_file.exists() else ""
        if not token or await store.staff_registry.for_token(token) is None:
            _, token = await store.staff_registry.add(DEMO_STAFF, (DEMO_INSEE,))
            token_file.write_text(token + "\n")
            token_file.chmod(0o600)
        user, password = await seed_password(store, data_dir)
        return {"token": token, "user": user, "password": password}
    finally:
        await store.close()


def main() -> int:
    data_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CRIEUR_DATA_DIR", "var"))
    data_dir.mkdir(parents=True, exist_ok=True)
    staff = asyncio.run(
        seed_demo(os.environ.get("CRIEUR_NATS_URL", "nats://127.0.0.1:4222"), data_dir)
    )
    # The launcher reads this line to say where to go and what to publish and sign in with.
    print(json.dumps({"insee": DEMO_INSEE, "name": DEMO_NAME} | staff))
    return 0


if __name__ == "__main__":
    sys.exit(main())
