"""deploy/backup.sh, once for real: back up a production store, lose it, restore it."""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import nats
import pytest

from schemas import subjects
from tests.integration.deploy.helpers import (
    DEPLOY,
    ConfiguredServer,
    Pki,
    crieur,
    inbox,
    service_env,
)

pytestmark = pytest.mark.integration


async def connect(server: ConfiguredServer, user: str) -> nats.NATS:
    tls = ssl.create_default_context(cafile=str(server.pki.ca_file))
    return await nats.connect(server.url(user), tls=tls, max_reconnect_attempts=1,
                              inbox_prefix=inbox(user))


def backup_sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(DEPLOY / "backup.sh"), *args], capture_output=True,
                          text=True, timeout=120, check=False)


async def test_backup_then_restore_into_a_new_store(tmp_path: Path) -> None:
    pki = Pki.make(tmp_path / "pki")
    store = tmp_path / "store"
    server = ConfiguredServer(DEPLOY / "nats" / "nats-server.conf", store, pki).start()
    try:
        assert crieur(["provision"], service_env(server, "provision", tmp_path)).returncode == 0
        operator = service_env(server, "operator", tmp_path)
        assert crieur(["commune", "add", "70299", "Lavoncourt"], operator).returncode == 0
        nc = await connect(server, "notices")
        await nc.jetstream().publish(subjects.notice("70299", "n1"), b'{"title": "Fete"}')
        await nc.close()
    finally:
        server.stop()

    archive = tmp_path / "crieur.tar.gz"
    done = backup_sh("backup", str(store), str(archive))
    assert done.returncode == 0, done.stderr
    # The machine is lost; a new one gets the archive. Restoring over data is refused.
    assert backup_sh("restore", str(archive), str(store)).returncode == 1
    new_store = tmp_path / "new-machine" / "store"
    done = backup_sh("restore", str(archive), str(new_store))
    assert done.returncode == 0, done.stderr

    restored = ConfiguredServer(DEPLOY / "nats" / "nats-server.conf", new_store, pki,
                                name="restored").start()
    try:
        nc = await connect(restored, "operator")
        js = nc.jetstream()
        msg = await js.get_last_msg("NOTICES", subjects.notice("70299", "n1"))
        assert msg.data == b'{"title": "Fete"}'
        communes = await js.key_value("communes")
        assert json.loads((await communes.get("70299")).value or b"{}")["name"] == "Lavoncourt"
        assert (await js.stream_info("NOTICES")).config.duplicate_window == 24 * 3600
        await nc.close()
        # Provisioning again finds everything in place.
        again = crieur(["provision"], service_env(restored, "provision", tmp_path))
        assert again.returncode == 0 and "created" not in again.stdout, again.stdout
    finally:
        restored.stop()
