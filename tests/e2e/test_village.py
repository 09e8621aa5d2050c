"""The village as a newcomer meets it: `make run`'s launcher, driven from outside over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from crieur import village as village_module
from tests.e2e.helpers import Village, launcher_events, start_village
from tests.helpers import read_subject

pytestmark = pytest.mark.e2e

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
NOTICES = "/api/v1/communes/70299/notices"


def read_stream(nats_url: str, notice_id: str) -> list[dict[str, object]]:
    """The notice's events as JetStream holds them, read with plain nats-py."""

    async def read() -> list[dict[str, object]]:
        nc = await nats.connect(nats_url)
        try:
            messages = await read_subject(nc.jetstream(), f"notices.70299.{notice_id}", 5)
        finally:
            await nc.close()
        return [{"kind": json.loads(m.data)["kind"], "msg_id": (m.header or {})["Nats-Msg-Id"]}
                for m in messages]

    return asyncio.run(read())


def test_publish_correct_withdraw_and_read_back_everywhere(village: Village) -> None:
    api = httpx.Client(base_url=village.api, timeout=30)
    draft = {"category": "alerte", "title": "Crue de la Saône : route de Gray fermée",
             "body": "Évitez les berges. Déviation par Dampierre.",
             "ends_at": "2099-12-31T18:00"}
    created = api.post(NOTICES, json=draft, headers=village.auth)
    assert created.status_code == 201, created.text
    notice = created.json()
    nid = notice["id"]

    listed = api.get(NOTICES).json()
    assert [n["id"] for n in listed["notices"]] == [nid]
    cap = ET.fromstring(api.get(f"{NOTICES}/{nid}/cap.xml").content)
    assert cap.findtext(f"{CAP}msgType") == "Alert"
    assert cap.findtext(f"{CAP}info/{CAP}area/{CAP}geocode/{CAP}value") == "70299"
    assert cap.findtext(f"{CAP}info/{CAP}severity") == "Severe"

    corrected = api.patch(f"{NOTICES}/{nid}", json={"title": "Crue : route de Gray rouverte"},
                          headers=village.auth)
    assert corrected.status_code == 200 and corrected.json()["version"] == 2
    feed_response = api.get("/api/v1/communes/70299/feed.atom")
    assert feed_response.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(feed_response.content)
    titles = [e.findtext(f"{ATOM}title") for e in feed.findall(f"{ATOM}entry")]
    assert len(titles) == 1 and "rouverte" in (titles[0] or "")
    cap = ET.fromstring(api.get(f"{NOTICES}/{nid}/cap.xml").content)
    assert cap.findtext(f"{CAP}msgType") == "Update"
    assert cap.findtext(f"{CAP}references")

    assert api.post(f"{NOTICES}/{nid}/withdraw", headers=village.auth).status_code == 200
    assert api.get(NOTICES).json()["notices"] == []
    # The feed keeps a withdrawal for a while, marked, so feed readers learn of it.
    entries = ET.fromstring(api.get("/api/v1/communes/70299/feed.atom").content).findall(
        f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == [
        "Retiré : Alerte : Crue : route de Gray rouverte"]
    cap = ET.fromstring(api.get(f"{NOTICES}/{nid}/cap.xml").content)
    assert cap.findtext(f"{CAP}msgType") == "Cancel"

    assert read_stream(village.nats_url, nid) == [
        {"kind": "published", "msg_id": f"{nid}:1:published"},
        {"kind": "corrected", "msg_id": f"{nid}:2:corrected"},
        {"kind": "withdrawn", "msg_id": f"{nid}:2:withdrawn"},
    ]
    assert api.get("/openapi.json").json()["info"]["title"] == "Crieur"


def test_the_crieur_command_does_the_operators_and_the_staffs_work(village: Village) -> None:
    crieur = [str(Path(sys.executable).parent / "crieur")]  # the console script in .venv
    env = dict(os.environ, CRIEUR_NATS_URL=village.nats_url, CRIEUR_API_URL=village.api)

    def run(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*crieur, *args], env=env | (extra_env or {}), capture_output=True,
                              text=True, timeout=60)

    assert run("commune", "add", "2A004", "Ajaccio").returncode == 0
    bad = run("commune", "add", "2C004", "Nulle part")
    assert bad.returncode == 2 and "2C004" in bad.stderr and "Traceback" not in bad.stderr
    assert "2A004\tAjaccio" in run("commune", "list").stdout
    added = run("staff", "add", "--commune", "2A004", "--name", "Accueil Ajaccio")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("crieur_")
    published = run("publish", "--commune", "2A004", "--category", "evenement",
                    "--title", "Fête de la Saint-Jean", "--body", "Feu de joie à 21 h.",
                    extra_env={"CRIEUR_TOKEN": token})
    assert published.returncode == 0, published.stdout + published.stderr
    assert json.loads(published.stdout)["commune"] == "2A004"
    refused = run("publish", "--commune", "70299", "--category", "evenement", "--title", "x",
                  "--body", "y", extra_env={"CRIEUR_TOKEN": token})
    assert refused.returncode == 1 and "commune_forbidden" in refused.stdout

    # `staff list`: login, name, ids ("token <id>", ...), communes, state; one line a person.
    line = next(x for x in run("staff", "list").stdout.splitlines() if "\tAccueil Ajaccio\t" in x)
    staff_id = line.split("\t")[2].split(",")[0].removeprefix("token ")
    revoked = run("staff", "revoke", staff_id)
    assert revoked.returncode == 0 and f"revoked token {staff_id}" in revoked.stdout
    after = httpx.post(f"{village.api}/api/v1/communes/2A004/notices",
                       json={"category": "information", "title": "t", "body": "b"},
                       headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_stops_everything_and_notices_survive_a_restart(tmp_path: Path) -> None:
    first = start_village(tmp_path / "var")
    created = httpx.post(first.api + NOTICES, headers=first.auth,
                         json={"category": "travaux", "title": "Église : échafaudage",
                               "body": "Place de l’église fermée lundi."})
    assert created.status_code == 201
    ports = [int(u.rsplit(":", 1)[1]) for u in (first.api, first.panel, first.nats_url)]
    assert first.stop() == 0
    assert [p for p in ports if listening(p)] == [], "something is still running"

    second = start_village(tmp_path / "var")
    try:
        assert second.token == first.token, "the demo staff token stays the same"
        notices = httpx.get(second.api + NOTICES).json()["notices"]
        assert [n["id"] for n in notices] == [created.json()["id"]]
    finally:
        second.stop()


def test_with_crieur_nats_url_the_village_uses_that_server_and_starts_none(
    tmp_path: Path, nats_url: str
) -> None:
    village = start_village(tmp_path / "var", {"CRIEUR_NATS_URL": nats_url})
    try:
        assert f"NATS            {nats_url}" in village.output.read_text()
        assert not (tmp_path / "var" / "nats").exists(), "no nats-server of its own"
        created = httpx.post(village.api + NOTICES, headers=village.auth,
                             json={"category": "information", "title": "Mairie fermée",
                                   "body": "Pont de l’Ascension."})
        assert created.status_code == 201
    finally:
        assert village.stop() == 0


def test_a_service_that_dies_is_restarted_and_the_others_keep_serving(tmp_path: Path) -> None:
    village = start_village(tmp_path / "var")
    try:
        [panel] = [e for e in launcher_events(village, "service_started")
                   if e["service"] == "panel"]
        os.kill(panel["pid"], signal.SIGKILL)
        answers: list[int] = []
        deadline = time.monotonic() + 60
        back = False
        while time.monotonic() < deadline and not back:
            # The front door answers all along, the sign being dead or not.
            answers.append(httpx.get(village.api + NOTICES, timeout=5).status_code)
            restarted = launcher_events(village, "service_restarted")
            if restarted:
                try:
                    back = httpx.get(village.panel + "/healthz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        assert back, "the sign was not restarted"
        assert set(answers) == {200} and len(answers) > 1
        [died] = launcher_events(village, "service_died")
        assert died["service"] == "panel" and died["pid"] == panel["pid"]
        assert died["restart_in_s"] > 0
        [restarted] = launcher_events(village, "service_restarted")
        assert restarted["service"] == "panel" and restarted["pid"] != panel["pid"]
        created = httpx.post(village.api + NOTICES, headers=village.auth,
                             json={"category": "information", "title": "Après la panne",
                                   "body": "Le panneau est revenu."})
        assert created.status_code == 201
        assert process_alive(village.process.pid)
    finally:
        assert village.stop() == 0, "Ctrl-C still stops everything"
    assert not listening(int(village.panel.rsplit(":", 1)[1]))
    assert not listening(int(village.api.rsplit(":", 1)[1]))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_nats_server_is_restarted_and_each_service_says_so_once(
        tmp_path: Path) -> None:
    village = start_village(tmp_path / "var")
    try:
        [server] = [e for e in launcher_events(village, "service_started")
                    if e["service"] == "nats-server"]
        before = village.output.stat().st_size
        os.kill(server["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 90
        created = None
        while time.monotonic() < deadline:
            # Publishing goes through the bus: it works again only once the server is back.
            created = httpx.post(village.api + NOTICES, headers=village.auth, timeout=10,
                                 json={"category": "information", "title": "Après la panne",
                                       "body": "Le serveur NATS est revenu."})
            if created.status_code == 201:
                break
            time.sleep(0.5)
        assert created is not None and created.status_code == 201, created and created.text
        [died] = launcher_events(village, "service_died")
        assert died["service"] == "nats-server" and died["pid"] == server["pid"]
        assert died["restart_in_s"] == village_module.FIRST_BACKOFF_S
        [restarted] = launcher_events(village, "service_restarted")
        assert restarted["service"] == "nats-server" and restarted["pid"] != server["pid"]
        # Each service: one line when the server went, one when it came back; no traceback.
        everyone = sorted(["notices", "panel", "email", "push", "sms", "webpush"])
        deadline = time.monotonic() + 60
        while said(village, before, "nats_reconnected") != everyone:
            assert time.monotonic() < deadline, said(village, before, "nats_reconnected")
            time.sleep(0.5)
        assert said(village, before, "nats_disconnected") == everyone
        records = after(village, before)
        assert not [r for r in records if r.get("event") == "nats_error"]
        text = village.output.read_bytes()[before:].decode()
        assert "Traceback" not in text
        assert [line for line in text.splitlines() if line and not line.startswith("{")] == []
    finally:
        assert village.stop() == 0, "Ctrl-C still stops everything"


def after(village: Village, offset: int) -> list[dict[str, Any]]:
    """The JSON log lines written since `offset`."""
    return [json.loads(line) for line in village.output.read_bytes()[offset:].decode()
            .splitlines() if line.startswith("{")]


def said(village: Village, offset: int, event: str) -> list[str]:
    """The services that logged `event` since `offset`, once per line."""
    return sorted(r["component"] for r in after(village, offset) if r.get("event") == event)
