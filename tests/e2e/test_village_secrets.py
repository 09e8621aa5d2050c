"""No secret in any log: a resident's every step through the front door, then every line read.

One village, started as `make run` starts it. A resident subscribes by email (confirm,
manage, unsubscribe links), by SMS (a code, then STOP through the webhook, in the header
form and the older path form, and a delivery receipt), and a phone
registers, changes and deletes its device. Every secret, token, code, address and number
used is gathered, and none may appear in any line any process wrote. The launcher's banner
is left out: it shows the demo's staff token to the person at the console on purpose.
"""

from __future__ import annotations

import email
import json
import re
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from crieur.nats_server import free_port
from crieur_dev.standins.smtp import messages
from services.sms.web import WEBHOOK_HEADER
from tests.e2e.helpers import (
    ALERTS,
    COMMUNE,
    Village,
    chromium_browser,
    eventually,
    publish,
    sms_received,
    start_village,
    subscribe_by_sms,
)

pytestmark = pytest.mark.e2e

ADDRESS = "residente.discrete@example.org"
PHONE = "06 45 67 89 01"
PHONE_FORMS = ("0645678901", "06 45 67 89 01", "33645678901", "+33645678901", "645678901")
FCM_TOKEN = "e2e-secret-phone:APA91b" + "Qz7" * 20
WITHIN = 90.0


@pytest.fixture(scope="module")
def village_and_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Village, str]]:
    standin = free_port()
    village = start_village(tmp_path_factory.mktemp("secrets-village"), {
        "CRIEUR_SMS_STANDIN_PORT": str(standin), "CRIEUR_SMS_HTTP_PORT": str(free_port())})
    try:
        yield village, f"http://127.0.0.1:{standin}"
    finally:
        village.stop()


def mails(village: Village) -> list[EmailMessage]:
    mailbox = village.data_dir / "mail"
    found = []
    for path in messages(mailbox) if mailbox.exists() else []:
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if msg["To"] == ADDRESS:
            found.append(msg)
    return found


def token_of(msg: EmailMessage, kind: str) -> str:
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(r"/api/v1/subscriptions/email/" + kind + r"/([A-Za-z0-9_.\-]+)", text)
    assert found is not None, f"no {kind} link in {text!r}"
    return found.group(1)


def logged_text(village: Village) -> str:
    """Everything the village's processes wrote, less the launcher's banner."""
    text = village.output.read_text()
    return re.sub(r"Crieur is running.*?Ctrl-C stops everything\.", "", text, flags=re.S)


def request_paths(text: str) -> set[str]:
    paths = set()
    for line in text.splitlines():
        if line.startswith("{") and '"http_request"' in line:
            record = json.loads(line)
            if record.get("event") == "http_request":
                paths.add(str(record["path"]))
    return paths


def without_times(text: str) -> str:
    """The text with its clock readings out: a 6-digit code may match their microseconds."""
    return re.sub(r"\d{2}:\d{2}:\d{2}[.,]\d+|\"ms\": [\d.]+", "", text)


def test_no_secret_token_code_address_or_number_in_any_log(
        village_and_standin: tuple[Village, str]) -> None:
    village, standin = village_and_standin
    api = village.api
    secrets: dict[str, str] = {"staff token": village.token, "address": ADDRESS,
                               "address's name": ADDRESS.split("@")[0], "FCM token": FCM_TOKEN}
    secrets |= {f"number as {form}": form for form in PHONE_FORMS}
    for name in ("sms-webhook-secret", "sms-secret-key", "email-secret-key"):
        secrets[name] = (village.data_dir / name).read_text().strip()
    webhook_secret = secrets["sms-webhook-secret"]

    # Email: subscribe, confirm by the link.
    eventually(lambda: httpx.post(api + "/api/v1/subscriptions/email", timeout=30, json={
        "email": ADDRESS, "follows": ALERTS}).status_code == 202,
        "the email channel answering", within=WITHIN)
    confirmation = eventually(lambda: mails(village), "the confirmation email", within=WITHIN)[-1]
    secrets["confirm token"] = token_of(confirmation, "confirm")
    confirm = f"{api}/api/v1/subscriptions/email/confirm/{secrets['confirm token']}"
    # The link opens a page; its button (a POST) confirms.
    assert httpx.get(confirm, timeout=30).status_code == 200
    assert httpx.post(confirm, timeout=30).status_code == 200

    # SMS: subscribe and confirm with the code.
    code_sms = subscribe_by_sms(village, standin, PHONE)
    code = re.search(r"\b(\d{6})\b", code_sms["body"]["content"])
    assert code is not None
    secrets["SMS code"] = code[1]

    # Push: a phone registers, changes what it follows, then deletes its device.
    devices = api + "/api/v1/devices"
    created = eventually(lambda: (r := httpx.post(devices, timeout=30, json={
        "token": FCM_TOKEN, "platform": "android", "follows": ALERTS})).status_code == 201 and r,
        "the push channel answering", within=WITHIN)
    assert created.json()["topics"] == [f"crieur-{COMMUNE}-alerte"]
    assert httpx.put(f"{devices}/{FCM_TOKEN}", timeout=30, json={
        "follows": [{"commune": COMMUNE}]}).status_code == 200

    # A notice: the email brings the manage and unsubscribe links; the SMS its receipt.
    before = len(mails(village))
    publish(village, "Coupure d'eau", "alerte", body="Rue de l'église, de 9 h à 11 h.")
    notice_mail = eventually(lambda: len(mails(village)) > before and mails(village),
                             "the notice email", within=WITHIN)[-1]
    secrets["manage token"] = token_of(notice_mail, "manage")
    secrets["unsubscribe token"] = token_of(notice_mail, "unsubscribe")
    eventually(lambda: any("Coupure" in r["body"]["content"] for r in sms_received(standin)),
               "the notice SMS", within=WITHIN)
    manage = f"{api}/api/v1/subscriptions/email/manage/{secrets['manage token']}"
    assert httpx.get(manage, timeout=30).status_code == 200
    assert httpx.post(manage, timeout=30, data={
        f"c.{COMMUNE}": ["alerte", "travaux"]}).status_code == 200
    unsubscribe = f"{api}/api/v1/subscriptions/email/unsubscribe/{secrets['unsubscribe token']}"
    assert httpx.get(unsubscribe, timeout=30).status_code == 200
    assert httpx.post(unsubscribe, timeout=30).status_code == 200

    # The webhooks: the secret in the header, then in the path (the older form), and STOP.
    header = {WEBHOOK_HEADER: webhook_secret}
    receipt = httpx.post(api + "/webhooks/sms/receipts", headers=header, timeout=30,
                         json={"messageId": 1, "event": "delivered"})
    assert receipt.status_code == 200, receipt.text
    assert httpx.post(api + "/webhooks/sms/receipts", timeout=30, headers={
        WEBHOOK_HEADER: "not-the-secret-0000000"}, json={"messageId": 1}).status_code == 404
    assert httpx.get(f"{api}/webhooks/sms/{webhook_secret}/receipts", timeout=30,
                     params={"id": "2", "dlr": "1"}).status_code == 200
    stop = httpx.post(f"{api}/webhooks/sms/{webhook_secret}/inbound", timeout=30,
                      json={"from": "33645678901", "reply": "STOP"})
    assert (stop.status_code, stop.json()["status"]) == (200, "unsubscribed")
    assert httpx.delete(f"{devices}/{FCM_TOKEN}", timeout=30).status_code == 204

    # The last request logged: every line before it is written too.
    text = eventually(lambda: (t := logged_text(village)) and re.search(
        r'"method": "DELETE"[^\n]*"event": "http_request"|"event": "http_request"[^\n]*'
        r'"method": "DELETE"', t) and t, "the last request in the log", within=WITHIN)
    leaked = {name for name, secret in secrets.items() if secret in text}
    assert not leaked, f"in the logs: {sorted(leaked)}"
    assert re.search(rf"\b{secrets['SMS code']}\b", without_times(text)) is None, "SMS code"
    # Every request was logged, its secrets redacted.
    wanted = {"/api/v1/subscriptions/email/confirm/[redacted]",
              "/api/v1/subscriptions/email/manage/[redacted]",
              "/api/v1/subscriptions/email/unsubscribe/[redacted]",
              "/api/v1/devices/[redacted]", "/webhooks/sms/receipts",
              "/webhooks/sms/[redacted]/inbound", "/webhooks/sms/[redacted]/receipts"}
    missing = wanted - request_paths(text)
    assert not missing, f"not in the front door's log: {sorted(missing)}"


@pytest.mark.browser
def test_docs_show_the_api_offline_under_their_csp(
        village_and_standin: tuple[Village, str], chromium: str, tmp_path: Path) -> None:
    village, _ = village_and_standin
    with chromium_browser(chromium) as browser:
        page = browser.new_page()
        blocked: list[str] = []
        page.on("console", lambda m: blocked.append(m.text) if m.type == "error" else None)
        # Offline: nothing may be fetched but from the front door.
        page.route(re.compile(r"^(?!" + re.escape(village.api) + ")"),
                   lambda route: route.abort())
        page.goto(village.api + "/docs")
        page.wait_for_selector("text=Publish (or schedule) a notice", timeout=30_000)
        assert not blocked, blocked
