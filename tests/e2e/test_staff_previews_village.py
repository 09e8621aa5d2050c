"""A secretary's data layer in the village as `make run` starts it, every part real.

A resident follows alerts by SMS and by phone; staff preview a draft (every running channel
answers from its own code, with its reach), attach a PDF, publish, and read how far the
notice went from DELIVERIES.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crieur.nats_server import free_port
from crieur_dev.standins.phone import DEMO_PHONES
from tests.e2e.helpers import ALERTS, Village, eventually, start_village, subscribe_by_sms

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
DRAFT = {"category": "alerte", "title": "Tempête : restez à l’abri",
         "body": "Vents ≥ 120 km/h attendus cette nuit. Rentrez les objets du jardin."}


@pytest.fixture(scope="module")
def staff_village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Village, str]]:
    standin_port = free_port()
    village = start_village(tmp_path_factory.mktemp("staff-village"), {
        "CRIEUR_SMS_STANDIN_PORT": str(standin_port),
        # The sign says how long it showed a notice every second, not every five minutes.
        "CRIEUR_PANEL_REPORT_INTERVAL_S": "1", "CRIEUR_PANEL_BLANK_HOURS": ""})
    yield village, f"http://127.0.0.1:{standin_port}"
    village.stop()


def follow_by_phone(village: Village) -> None:
    token = f"e2e{uuid.uuid4().hex[:8]}:APA91b{uuid.uuid4().hex}{uuid.uuid4().hex}"
    eventually(lambda: httpx.post(village.api + "/api/v1/devices", json={
        "token": token, "follows": ALERTS}).status_code in (201, 202),
        "the push channel registering the phone")


def test_preview_attach_publish_and_reach(staff_village: tuple[Village, str]) -> None:
    village, standin = staff_village
    api = f"{village.api}/api/v1/communes/70299"

    def previewed() -> dict[str, Any]:
        answer = httpx.post(api + "/previews", headers=village.auth, json=DRAFT, timeout=10)
        assert answer.status_code == 200, answer.text
        channels: dict[str, Any] = answer.json()["channels"]
        return channels

    # make run's demo phones follow the village too, registered in the background at start:
    # wait until every one of them is counted, or a late one would pass for the resident's.
    phones = sum(1 for p in DEMO_PHONES if DRAFT["category"] in p.categories)
    before = eventually(lambda: (c := previewed()) and all(
        x["available"] for x in c.values()) and c["push"]["reach"]["devices"] == phones and c,
        "every channel previewing, every demo phone counted")
    assert before["sms"]["reach"] == 0
    subscribe_by_sms(village, standin, "06 98 76 54 32")
    follow_by_phone(village)
    channels = eventually(lambda: (c := previewed())["sms"]["reach"] == 1
                          and c["push"]["reach"]["devices"] == phones + 1 and c,
                          "the resident counted by SMS and by phone")
    push, sms, panel, email = (channels[k] for k in ("push", "sms", "panel", "email"))
    assert push["title"] == "Lavoncourt · Alerte" and push["body"] == DRAFT["title"]
    assert push["reach"]["topics"] == ["crieur-70299-alerte"] and push["high_priority"]
    # « ≥ » has no GSM-7 stand-in: the SMS is UCS-2 anyway, so it keeps its accents.
    assert sms["encoding"] == "UCS-2" and sms["long_characters"] == ["≥"]
    assert sms["text"].startswith("Lavoncourt - Alerte : Tempête : restez à l’abri")
    assert sms["text"].endswith("Répondez STOP pour arrêter")
    assert sms["parts_to_pay"] == sms["parts"] >= 1
    assert base64.b64decode(panel["image_png_base64"]).startswith(b"\x89PNG")
    assert panel["frames"] >= 1 and (panel["width"], panel["height"]) == (128, 32)
    assert email["subject"] == "Alerte : Tempête : restez à l’abri" and email["reach"] == 0
    assert "Rentrez les objets du jardin." in email["text"]

    uploaded = httpx.post(api + "/attachments", headers=village.auth,
                          files={"file": ("Arrêté préfectoral.pdf", PDF, "application/pdf")})
    assert uploaded.status_code == 201, uploaded.text
    attachment = uploaded.json()
    published = httpx.post(api + "/notices", headers=village.auth,
                           json={**DRAFT, "attachments": [attachment["id"]]})
    assert published.status_code == 201, published.text
    notice = published.json()
    page = httpx.get(f"{village.api}/communes/70299/notices/{notice['id']}")
    assert "Arrêté préfectoral.pdf" in page.text
    download = httpx.get(attachment["url"])
    assert download.content == PDF and download.headers["content-type"] == "application/pdf"

    def reached() -> dict[str, Any] | None:
        reach: dict[str, Any] = httpx.get(api + f"/notices/{notice['id']}/reach",
                                          headers=village.auth).json()
        done = (reach["sms"]["sent"] >= 1 and reach["push"]["sent"] >= 1
                and reach["panel"]["shown_seconds"] > 0)
        return reach if done else None

    reach = eventually(reached, "SMS, push and the sign reported on DELIVERIES", within=90)
    assert reach["push"]["topics"] == {"crieur-70299-alerte": 1}  # one message per topic
    assert reach["email"]["sent"] == 0 and reach["complete"] is True
    sent_sms = [r for r in httpx.get(standin + "/_standin/received").json()
                if r["method"] == "POST" and "Tempête" in r["body"]["content"]]
    assert sent_sms and sent_sms[0]["body"]["content"] == sms["text"]
