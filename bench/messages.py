"""The bytes the raw baselines send: what the services send for the bench notice, built once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bench.seed import PUBLIC_URL, phone_number
from bench.village import EMAIL_SECRET
from schemas.events import EventKind
from schemas.notice import Notice
from services.email.format import build_notice, normalise_address
from services.email.links import Links
from services.sms.format import compose_notice, stop_mention
from services.sms.providers.brevo import payload


def real_email(notice: Notice) -> bytes:
    """The notice's email exactly as the service builds it for one subscriber."""
    links = Links(EMAIL_SECRET, PUBLIC_URL, 3600)
    address = normalise_address("habitant0@example.org")
    rid = links.recipient_id(address)
    draft = build_notice(EventKind.PUBLISHED, notice, "Lavoncourt",
                         from_address="avis@crieur.localhost", public_url=PUBLIC_URL,
                         now=datetime.now(UTC))
    return draft.personalise(rid, address, links.unsubscribe_url(rid), links.manage_url(rid))


def real_sms_bodies(notice: Notice, n: int) -> list[bytes]:
    """The Brevo request bodies the SMS service would post for the notice, one per number."""
    sms = compose_notice(kind=EventKind.PUBLISHED, commune_name="Lavoncourt",
                         label=notice.label, title=notice.title, body=notice.body,
                         link=f"{PUBLIC_URL}/communes/{notice.commune}/notices/{notice.id}",
                         stop=stop_mention(None), max_parts=3)
    return [json.dumps(payload(phone_number(3, i), sms, "Crieur")).encode() for i in range(n)]
