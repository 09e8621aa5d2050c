"""The email of a notice, exact: headers, both parts, personal links, no header injection."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import cast

import pytest

from schemas.events import EventKind
from schemas.notice import Notice
from services.email.format import (
    BadAddress,
    build_already_subscribed,
    build_confirmation,
    build_notice,
    french_date,
    mailbox,
    normalise_address,
)

NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
UNSUB = "https://crieur.example/api/v1/subscriptions/email/unsubscribe/U1"
MANAGE = "https://crieur.example/api/v1/subscriptions/email/manage/M1?a=1&b=2"


def notice(**changes: object) -> Notice:
    fields: dict[str, object] = dict(
        id="abcd1234efgh", commune="70299", category="alerte",
        title="Tempête : restez chez vous",
        body="Vents à 120 km/h attendus cette nuit.\n\nNe sortez pas <b>du tout</b>.",
        ends_at=datetime(2026, 12, 2, 8, 0), author="Mairie", version=1, state="published",
        created_at=NOW, updated_at=NOW)
    fields.update(changes)
    return Notice.model_validate(fields)


def parse(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, email.message_from_bytes(raw, policy=policy.default))


def render(kind: EventKind = EventKind.PUBLISHED, commune: str = "Lavoncourt",
           **changes: object) -> EmailMessage:
    draft = build_notice(kind, notice(**changes), commune, from_address="avis@crieur.example.org",
                         public_url="https://crieur.example", now=NOW)
    return parse(draft.personalise("0123456789abcdef0123456789abcdef", "jean@example.org",
                                   UNSUB, MANAGE))


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return cast(str, part.get_content()).replace("\r\n", "\n")


def html_of(msg: EmailMessage) -> str:
    part = msg.get_body(("html",))
    assert part is not None
    return cast(str, part.get_content()).replace("\r\n", "\n")


def test_a_published_notice_is_a_multipart_email_in_the_communes_name() -> None:
    msg = render()
    assert msg["From"] == "Mairie de Lavoncourt <avis@crieur.example.org>"
    assert msg["To"] == "jean@example.org"
    assert msg["Subject"] == "Alerte : Tempête : restez chez vous"
    assert msg["Date"] == "Tue, 01 Dec 2026 08:00:00 +0100"
    assert msg["Message-ID"] == (
        "<abcd1234efgh.1.published.0123456789abcdef0123456789abcdef@crieur.example.org>")
    assert msg["List-Unsubscribe"] == f"<{UNSUB}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "Avis de Lavoncourt <70299.avis.crieur.example.org>"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert text_of(msg) == (
        "Alerte — Mairie de Lavoncourt\n"
        "\n"
        "Tempête : restez chez vous\n"
        "\n"
        "Vents à 120 km/h attendus cette nuit.\n"
        "\n"
        "Ne sortez pas <b>du tout</b>.\n"
        "\n"
        "Jusqu'au mercredi 2\u00a0décembre 2026 à 8\u00a0h\u00a000.\n"
        "\n"
        "Lire l'avis sur le site de la mairie :\n"
        "https://crieur.example/communes/70299/notices/abcd1234efgh\n"
        "\n"
        "--\n"
        "Vous recevez ce e-mail parce que vous suivez les avis de Lavoncourt.\n"
        "Choisir vos communes et vos sujets, ou effacer vos données :\n"
        f"{MANAGE}\n"
        "Ne plus recevoir ces e-mails :\n"
        f"{UNSUB}\n"
    )


def test_the_html_part_escapes_what_staff_typed_and_has_one_button() -> None:
    html = html_of(render())
    assert "Ne sortez pas &lt;b&gt;du tout&lt;/b&gt;." in html
    assert "<b>du tout</b>" not in html
    assert html.count('href="https://crieur.example/communes/70299/notices/abcd1234efgh"') == 1
    assert "Lire l'avis sur le site de la mairie</a>" in html
    assert 'href="https://crieur.example/api/v1/subscriptions/email/manage/M1?a=1&amp;b=2"' in html
    assert f'href="{UNSUB}"' in html
    assert '<html lang="fr">' in html
    assert "font-size:20px" in html


def test_a_correction_is_marked_as_such() -> None:
    msg = render(EventKind.CORRECTED, version=2, state="corrected")
    assert msg["Subject"] == "Rectificatif — Alerte : Tempête : restez chez vous"
    assert text_of(msg).startswith(
        "RECTIFICATIF : cet avis remplace celui que vous avez reçu plus tôt.\n\n")
    assert "<strong>Rectificatif :</strong>" in html_of(msg)
    assert msg["Message-ID"].startswith("<abcd1234efgh.2.corrected.")


def test_a_withdrawal_is_short() -> None:
    msg = render(EventKind.WITHDRAWN, state="withdrawn")
    assert msg["Subject"] == "Avis retiré : Tempête : restez chez vous"
    assert text_of(msg).split("\n--\n")[0] == (
        "Avis retiré — Mairie de Lavoncourt\n"
        "\n"
        "La mairie a retiré cet avis : « Tempête : restez chez vous ».\n"
        "Il n'est plus valable. Vous n'avez rien à faire.\n")
    assert msg["List-Unsubscribe"] == f"<{UNSUB}>"
    assert msg["Message-ID"].startswith("<abcd1234efgh.1.withdrawn.")


def test_the_message_id_is_stable_per_notice_version_and_recipient() -> None:
    first, again = render(), render()
    assert first["Message-ID"] == again["Message-ID"]
    draft = build_notice(EventKind.PUBLISHED, notice(), "Lavoncourt",
                         from_address="avis@crieur.example.org",
                         public_url="https://crieur.example", now=NOW)
    other = parse(draft.personalise("ffff", "marie@example.org", UNSUB, MANAGE))
    assert other["Message-ID"] != first["Message-ID"]


def test_no_header_can_be_injected_through_a_title_or_a_commune_name() -> None:
    msg = render(commune="Lavoncourt\r\nBcc: evil@example.net",
                 title="Fête\r\nBcc: evil@example.net\nX-Evil: 1")
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert msg["Subject"] == "Alerte : Fête Bcc: evil@example.net X-Evil: 1"
    assert msg["From"].addresses[0].addr_spec == "avis@crieur.example.org"
    assert msg["From"].addresses[0].display_name == "Mairie de Lavoncourt Bcc: evil@example.net"
    assert [a.addr_spec for a in msg["To"].addresses] == ["jean@example.org"]


def test_no_header_can_be_injected_through_an_address() -> None:
    draft = build_notice(EventKind.PUBLISHED, notice(), "Lavoncourt",
                         from_address="avis@crieur.example.org",
                         public_url="https://crieur.example", now=NOW)
    for bad in ("jean@example.org\r\nBcc: evil@example.net", "jean@exa mple.org",
                "<jean@example.org>", "jean@example.org>, evil@example.net"):
        with pytest.raises(BadAddress):
            draft.personalise("r", bad, UNSUB, MANAGE)


@pytest.mark.parametrize(("raw", "stored"), [
    ("Jean.Dupont@Example.ORG", "jean.dupont@example.org"),
    ("  marie@example.org ", "marie@example.org"),
    ("x@münchen.de", "x@xn--mnchen-3ya.de"),
])
def test_addresses_are_normalised(raw: str, stored: str) -> None:
    assert normalise_address(raw) == stored


@pytest.mark.parametrize("raw", ["", "jean", "jean@", "é@example.org", "a@b.test",
                                 "a@example.org\nBcc: x@y.org", "a b@example.org"])
def test_bad_addresses_are_refused(raw: str) -> None:
    with pytest.raises(BadAddress):
        normalise_address(raw)


def test_the_confirmation_email() -> None:
    raw = build_confirmation(address="jean@example.org",
                             confirm_url="https://crieur.example/c/TOKEN",
                             communes=["Lavoncourt (70299)"],
                             from_address="avis@crieur.example.org", now=NOW, nonce="n1")
    msg = parse(raw)
    assert msg["Subject"] == "Confirmez votre inscription aux avis de votre mairie"
    assert msg["To"] == "jean@example.org"
    assert msg["List-Unsubscribe"] is None
    assert msg["Message-ID"] == "<confirm.n1@crieur.example.org>"
    assert text_of(msg) == (
        "Bonjour,\n"
        "\n"
        "Quelqu'un, sans doute vous, a demandé à recevoir par e-mail les avis de la mairie\n"
        "pour : Lavoncourt (70299).\n"
        "\n"
        "Pour confirmer, ouvrez ce lien puis appuyez sur le bouton « Confirmer » :\n"
        "https://crieur.example/c/TOKEN\n"
        "\n"
        "Si ce n'est pas vous, ne faites rien : vous ne recevrez aucun avis.\n")
    assert "Oui, je veux recevoir les avis</a>" in html_of(msg)


@pytest.mark.parametrize(("address", "box"), [
    ("jean@example.org", "jean@example.org"),
    ("jean+avis@example.org", "jean@example.org"),
    ("jean+a+b@example.org", "jean@example.org"),
    ("j.ean@example.org", "j.ean@example.org"),  # dots matter except at Google
    ("j.e.a.n+1@gmail.com", "jean@gmail.com"),
    ("Jean@GoogleMail.com", "jean@gmail.com"),
    ("+only@example.org", "+only@example.org"),  # nothing left to strip to
])
def test_one_mailbox_for_every_spelling_that_reaches_it(address: str, box: str) -> None:
    assert mailbox(address) == box


def test_the_already_subscribed_email() -> None:
    raw = build_already_subscribed(address="jean@example.org", manage_url=MANAGE,
                                   from_address="avis@crieur.example.org", now=NOW, nonce="n2")
    msg = parse(raw)
    assert msg["Subject"] == "Vous êtes déjà abonné·e : gérer vos abonnements"
    assert msg["To"] == "jean@example.org"
    assert msg["List-Unsubscribe"] is None
    assert msg["Message-ID"] == "<already.n2@crieur.example.org>"
    assert MANAGE in text_of(msg)
    assert "confirm" not in text_of(msg)
    assert 'href="https://crieur.example/api/v1/subscriptions/email/manage/M1?a=1&amp;b=2"' in (
        html_of(msg))


def test_french_dates() -> None:
    # The site's formatter (9 h 00, not 09 h 00), with the weekday; no-break spaces inside.
    assert french_date(datetime(2026, 12, 1, 7, 5, tzinfo=UTC)).replace("\u00a0", " ") == (
        "mardi 1er décembre 2026 à 8 h 05")
    assert french_date(datetime(2026, 8, 15, 20, 0, tzinfo=UTC)).replace("\u00a0", " ") == (
        "samedi 15 août 2026 à 22 h 00")



def test_the_notices_links_are_in_both_parts() -> None:
    msg = render(category="travaux", links=[
        {"url": "https://lavoncourt.fr/programme.pdf", "label": "Programme complet"},
        {"url": "https://lavoncourt.fr/deviation", "label": "Plan de la déviation"},
        {"url": "https://lavoncourt.fr/arrete"}])
    text = text_of(msg)
    assert ("Liens :\n"
            "- Programme complet : https://lavoncourt.fr/programme.pdf\n"
            "- Plan de la déviation : https://lavoncourt.fr/deviation\n"
            "- https://lavoncourt.fr/arrete\n"
            "\n"
            "Lire l'avis sur le site de la mairie :") in text
    html = html_of(msg)
    assert ('<a href="https://lavoncourt.fr/programme.pdf" style="color:#1d3a8a;">'
            "Programme complet</a>") in html
    assert ">Plan de la déviation</a>" in html
    assert ">https://lavoncourt.fr/arrete</a>" in html
