"""`make run` with email: a resident subscribes, confirms, and the next notice is in var/mail."""

from __future__ import annotations

import email
import html
import re
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import cast

import httpx
import pytest

from crieur_dev.standins.smtp import messages
from tests.e2e.helpers import Village

pytestmark = pytest.mark.e2e


def mails(village: Village) -> list[EmailMessage]:
    return [cast(EmailMessage, email.message_from_bytes(p.read_bytes(), policy=policy.default))
            for p in messages(village.data_dir / "mail")]


def wait_mail(village: Village, count: int) -> list[EmailMessage]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = mails(village)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} emails in {village.data_dir / 'mail'}")


def body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return cast(str, part.get_content())


def test_the_village_runs_the_email_channel_and_keeps_mail_in_var_mail(village: Village) -> None:
    text = village.output.read_text()
    assert f"every email kept in {village.data_dir / 'mail'}" in text
    already = len(mails(village)) if (village.data_dir / "mail").exists() else 0
    subscribed = httpx.post(village.api + "/api/v1/subscriptions/email", json={
        "email": "habitant@example.org",
        "follows": [{"commune": "70299", "categories": ["alerte"]}]})
    assert subscribed.status_code == 202, subscribed.text
    confirmation = wait_mail(village, already + 1)[-1]
    assert confirmation["To"] == "habitant@example.org"
    # The link is on the front door's port as the village was started (not 8080).
    link = re.search(r"(\S+/api/v1/subscriptions/email/confirm/\S+)", body(confirmation))
    assert link is not None and link.group(1).startswith(village.api + "/"), link
    # The link opens a page with a button (a mail scanner opening it confirms nothing).
    opened = httpx.get(link.group(1))
    assert opened.status_code == 200 and '<form method="post"' in opened.text
    confirmed = httpx.post(link.group(1))
    assert confirmed.status_code == 200 and "C'est confirmé" in html.unescape(confirmed.text)

    published = httpx.post(village.api + "/api/v1/communes/70299/notices", headers=village.auth,
                           json={"category": "alerte", "title": "Route de Gray fermée",
                                 "body": "Chute d’arbre."})
    assert published.status_code == 201, published.text
    notice = wait_mail(village, already + 2)[-1]
    assert notice["To"] == "habitant@example.org"
    assert notice["Subject"] == "Alerte : Route de Gray fermée"
    assert notice["From"].addresses[0].display_name == "Mairie de Lavoncourt"
    assert notice["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (Path(village.data_dir) / "email-secret-key").stat().st_mode & 0o077 == 0
    assert "habitant@example.org" not in village.output.read_text(), "no address in any log"


def test_with_crieur_smtp_host_set_the_village_starts_no_stand_in(tmp_path: Path) -> None:
    from crieur_dev.standins.smtp import SmtpStandin
    from tests.e2e.helpers import start_village

    relay = SmtpStandin(tmp_path / "relay").start()  # "the mairie's relay"
    village = start_village(tmp_path / "village", {
        "CRIEUR_SMTP_HOST": relay.host, "CRIEUR_SMTP_PORT": str(relay.port)})
    try:
        assert f"sent through {relay.host} (CRIEUR_SMTP_HOST)" in village.output.read_text()
        subscribed = httpx.post(village.api + "/api/v1/subscriptions/email", json={
            "email": "habitant@example.org",
            "follows": [{"commune": "70299", "categories": ["travaux"]}]})
        assert subscribed.status_code == 202
        deadline = time.monotonic() + 30
        while not relay.messages() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(relay.messages()) == 1
        assert not (village.data_dir / "mail").exists()
    finally:
        village.stop()
        relay.stop()
