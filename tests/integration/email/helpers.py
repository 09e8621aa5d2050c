"""What the email tests share: settings for an in-process email service, reading the mailbox."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

from crieur_dev.standins.smtp import SmtpStandin
from services.email.settings import EmailSettings

# Shared with the other channels' tests; the email tests import it from here.
from tests.integration.helpers import wait_for as wait_for
from tests.integration.notices.helpers import FrontDoor

PUBLIC_URL = "https://crieur.example"
SECRET = "test-secret-key-" + "x" * 32
FAST = {"channel_ack_wait_s": 3.0, "channel_backoff_s": 0.1, "channel_backoff_max_s": 1.0,
        "channel_batch": 128, "channel_drain_s": 10.0}


def email_settings(nats_url: str, mailbox: SmtpStandin, data_dir: Path,
                   **changes: Any) -> EmailSettings:
    values: dict[str, Any] = dict(
        nats_url=nats_url, smtp_host=mailbox.host, smtp_port=mailbox.port, smtp_pool=4,
        smtp_from="avis@crieur.example.org", public_url=PUBLIC_URL, email_secret_key=SECRET,
        data_dir=data_dir, **FAST)
    values.update(changes)
    return EmailSettings(**values)


def parse(path: Path) -> EmailMessage:
    return cast(EmailMessage, email.message_from_bytes(path.read_bytes(), policy=policy.default))


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return cast(str, part.get_content()).replace("\r\n", "\n")


def link_in(msg: EmailMessage, kind: str) -> str:
    """The path (after PUBLIC_URL) of the first `kind` link (confirm, unsubscribe, manage)."""
    found = re.search(re.escape(PUBLIC_URL) + r"(/api/v1/subscriptions/email/" + kind
                      + r"/[A-Za-z0-9_.\-]+)", text_of(msg))
    assert found, f"no {kind} link in {text_of(msg)!r}"
    return found.group(1)


def mails_to(mailbox: SmtpStandin, address: str) -> list[EmailMessage]:
    return [m for m in (parse(p) for p in mailbox.messages()) if m["To"] == address]


URL = "/api/v1/subscriptions/email"


def subscription(door: FrontDoor, address: str, *categories: str) -> dict[str, Any]:
    """The body of a subscription to the door's commune (alerts unless told)."""
    return {"email": address,
            "follows": [{"commune": door.insee, "categories": list(categories or ["alerte"])}]}
