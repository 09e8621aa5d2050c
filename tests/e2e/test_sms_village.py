"""SMS in the village as `make run` starts it: subscribe, code, notice, STOP, preview.

Everything goes through the front door over HTTP; the SMS stand-in plays the provider and
the resident's phone (it posts the STOP reply to the front door's webhook).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crieur.nats_server import free_port
from tests.e2e.helpers import Village, start_village

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sms_village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Village, str]]:
    standin_port = free_port()
    village = start_village(tmp_path_factory.mktemp("sms-village"), {
        "CRIEUR_SMS_STANDIN_PORT": str(standin_port), "CRIEUR_SMS_HTTP_PORT": str(free_port()),
        "CRIEUR_SMS_STOP_NUMBER": "36180"})
    yield village, f"http://127.0.0.1:{standin_port}"
    village.stop()


def eventually(check: Callable[[], Any], what: str, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"not within {within}s: {what}")


def received(standin: str) -> list[dict[str, Any]]:
    return [r for r in httpx.get(standin + "/_standin/received").json()
            if r["method"] == "POST"]


def test_a_resident_subscribes_gets_an_alert_and_stops(sms_village: tuple[Village, str]) -> None:
    village, standin = sms_village
    subscriptions = village.api + "/api/v1/subscriptions/sms"
    follows = [{"commune": "70299", "categories": ["alerte"]}]
    # The SMS service may still be arming its consumers: the front door says 503 meanwhile.
    answer = eventually(lambda: (r := httpx.post(subscriptions, json={
        "phone": "06 12 34 56 78", "follows": follows})).status_code == 202 and r,
        "the SMS service answering")
    assert answer.json()["status"] == "pending"
    code_sms = eventually(lambda: received(standin), "the code SMS")[-1]["body"]
    assert code_sms["recipient"] == "33612345678"
    code = re.search(r"\b(\d{6})\b", code_sms["content"]).group(1)  # type: ignore[union-attr]
    confirmed = httpx.post(subscriptions + "/confirm",
                           json={"phone": "+33 6 12 34 56 78", "code": code})
    assert confirmed.status_code == 200, confirmed.text
    time.sleep(1.0)  # the fan-out's index follows the subscribers bucket

    published = httpx.post(f"{village.api}/api/v1/communes/70299/notices", headers=village.auth,
                           json={"category": "alerte", "title": "Tempête : restez chez vous",
                                 "body": "Vents à 120 km/h attendus cette nuit."})
    assert published.status_code == 201, published.text
    alert = eventually(lambda: [r for r in received(standin)
                                if "Tempete" in r["body"]["content"]], "the alert SMS")
    assert alert[0]["body"]["content"] == (
        "Lavoncourt - Alerte : Tempete : restez chez vous\n"
        "Vents à 120 km/h attendus cette nuit.\nSTOP au 36180")

    # The resident replies STOP: the stand-in posts it to the front door's webhook.
    replied = httpx.post(standin + "/_standin/reply", json={"from": "33612345678",
                                                            "text": "Stop"})
    assert replied.json()["webhook_status"] == 200
    before = len(received(standin))
    httpx.post(f"{village.api}/api/v1/communes/70299/notices", headers=village.auth,
               json={"category": "alerte", "title": "Crue", "body": "Restez loin du bord."})
    time.sleep(4.0)
    assert len(received(standin)) == before

    # A webhook call without the secret changes nothing.
    assert httpx.post(village.api + "/webhooks/sms/not-the-secret-at-all/inbound",
                      json={"from": "33612345678", "reply": "STOP"}).status_code == 404


def test_staff_preview_through_the_front_door(sms_village: tuple[Village, str]) -> None:
    village, _ = sms_village
    answer = eventually(lambda: (r := httpx.post(
        village.api + "/api/v1/previews/sms",
        json={"text": "Fête de l’école « en plein air »", "transliterate": False}
    )).status_code == 200 and r, "the preview")
    assert answer.json() == {"text": "Fête de l’école « en plein air »", "encoding": "UCS-2",
                             "parts": 1, "ucs2_characters": ["ê", "’", "«", "»"], "cut": False}
    assert httpx.post(village.api + "/api/v1/previews/sms",
                      json={"text": "Fête de l’école « en plein air »"}).json()["text"] == (
        'Fete de l\'école "en plein air"')


def test_the_stand_in_keeps_what_it_received_for_the_phone_page(
        sms_village: tuple[Village, str]) -> None:
    village, _ = sms_village
    lines = (village.data_dir / "standins" / "sms.jsonl").read_text().splitlines()
    assert lines and all('"recipient"' in line for line in lines)
    assert not Path(village.data_dir / "sms-webhook-secret").read_text().strip() == ""
