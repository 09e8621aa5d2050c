"""SMS in the village as `make run` starts it: subscribe, code, notice, STOP, preview.

Everything goes through the front door over HTTP; the SMS stand-in plays the provider and
the resident's phone (it posts the STOP reply to the front door's webhook).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crieur.nats_server import free_port
from tests.e2e.helpers import (
    Village,
    eventually,
    publish,
    sms_received,
    start_village,
    subscribe_by_sms,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sms_village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Village, str]]:
    standin_port = free_port()
    village = start_village(tmp_path_factory.mktemp("sms-village"), {
        "CRIEUR_SMS_STANDIN_PORT": str(standin_port), "CRIEUR_SMS_HTTP_PORT": str(free_port()),
        "CRIEUR_SMS_STOP_NUMBER": "36180"})
    yield village, f"http://127.0.0.1:{standin_port}"
    village.stop()


def test_a_resident_subscribes_gets_an_alert_and_stops(sms_village: tuple[Village, str]) -> None:
    village, standin = sms_village
    code_sms = subscribe_by_sms(village, standin, "06 12 34 56 78",
                                confirm_as="+33 6 12 34 56 78")["body"]
    assert code_sms["recipient"] == "33612345678"
    # Delivery receipts come back to the front door's port as the village was started.
    assert code_sms["webUrl"].startswith(village.api + "/webhooks/sms/")
    time.sleep(1.0)  # the fan-out's index follows the subscribers bucket

    publish(village, "Tempête : restez chez vous", "alerte",
            body="Vents à 120 km/h attendus cette nuit.")
    alert = eventually(lambda: [r for r in sms_received(standin)
                                if "Tempete" in r["body"]["content"]], "the alert SMS")
    assert alert[0]["body"]["content"] == (
        "Lavoncourt - Alerte : Tempete : restez chez vous\n"
        "Vents à 120 km/h attendus cette nuit.\nSTOP au 36180")

    # The resident replies STOP: the stand-in posts it to the front door's webhook.
    replied = httpx.post(standin + "/_standin/reply", json={"from": "33612345678",
                                                            "text": "Stop"})
    assert replied.json()["webhook_status"] == 200
    before = len(sms_received(standin))
    publish(village, "Crue", "alerte", body="Restez loin du bord.")
    time.sleep(4.0)
    assert len(sms_received(standin)) == before

    # A webhook call without the secret changes nothing.
    assert httpx.post(village.api + "/webhooks/sms/not-the-secret-at-all/inbound",
                      json={"from": "33612345678", "reply": "STOP"}).status_code == 404


def test_staff_preview_through_the_front_door(sms_village: tuple[Village, str]) -> None:
    village, _ = sms_village
    answer = eventually(lambda: (r := httpx.post(
        village.api + "/api/v1/previews/sms", headers=village.auth,
        json={"text": "Fête de l’école « en plein air »", "transliterate": False}
    )).status_code == 200 and r, "the preview")
    assert answer.json() == {"text": "Fête de l’école « en plein air »", "encoding": "UCS-2",
                             "parts": 1, "ucs2_characters": ["ê", "’", "«", "»"], "cut": False}
    assert httpx.post(village.api + "/api/v1/previews/sms", headers=village.auth,
                      json={"text": "Fête de l’école « en plein air »"}).json()["text"] == (
        'Fete de l\'école "en plein air"')
    # Staff only, as documented: anyone else is turned away at the front door.
    assert httpx.post(village.api + "/api/v1/previews/sms",
                      json={"text": "Bonjour"}).status_code == 401


def test_the_stand_in_keeps_what_it_received_for_the_phone_page(
        sms_village: tuple[Village, str]) -> None:
    village, _ = sms_village
    lines = (village.data_dir / "standins" / "sms.jsonl").read_text().splitlines()
    assert lines and all('"recipient"' in line for line in lines)
    assert not Path(village.data_dir / "sms-webhook-secret").read_text().strip() == ""
