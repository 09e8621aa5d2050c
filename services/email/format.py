"""Notice -> email, pure: built once per edition, then personalised cheaply per recipient.

Building a MIME message with the standard library costs more than sending it (~800/s), so
`build_*` render the templates and the common headers once, with unguessable placeholders
where the personal links go; `EmailDraft.personalise` fills them in with string
replacement and C-speed quoted-printable encoding.

Nothing a member of staff or a resident typed can add a header: titles and commune names
are folded into RFC 2047 encoded words by the standard library, with line breaks turned
into spaces first, and addresses are checked (no control characters, one @) before use.
"""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import escape

from crieur import french
from schemas.events import EventKind
from schemas.notice import CATEGORY_LABELS, PARIS, Notice

_ENV = Environment(
    loader=PackageLoader("services.email", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

# A made-up token per process: a notice's text cannot contain it by chance or on purpose.
_NONCE = secrets.token_hex(8)
UNSUBSCRIBE = f"CRIEURUNSUBSCRIBE{_NONCE}"
MANAGE = f"CRIEURMANAGE{_NONCE}"

_ADDRESS = re.compile(r"^[!#$%&'*+/=?^_`{|}~.A-Za-z0-9-]{1,64}@[A-Za-z0-9.-]{1,255}$")
_BOUNDARY = "=_crieur_"


class BadAddress(ValueError):
    """An email address that cannot be used (syntax, non-ASCII local part, reserved domain)."""


def normalise_address(raw: str) -> str:
    """A resident's address as stored: validated, domain in ASCII (IDN), all lower case.

    Lower case although RFC 5321 lets the local part be case-sensitive: no mailbox a
    village resident uses is, and `Jean@x.fr` and `jean@x.fr` must be one subscription.
    """
    try:
        checked = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise BadAddress(str(error)) from error
    ascii_email = checked.ascii_email or checked.normalized
    return check_address(ascii_email.lower())


# Providers that ignore dots in the local part and treat both domains as one mailbox.
_DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox(address: str) -> str:
    """The mailbox a normalised address delivers to, as far as limits are concerned.

    `jean+1@x.fr` and `jean@x.fr` reach one mailbox (sub-addressing), and so do
    `j.ean@gmail.com` and `jean@googlemail.com`: a limit per typed string would let anyone
    flood one resident with spellings. Only limits use this; the address is stored and
    written to as typed. Rule: lower case (already), drop `+tag` from the local part, and
    for gmail.com / googlemail.com also drop the dots and count both as gmail.com.
    """
    local, _, domain = address.lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in _DOTLESS:
        local, domain = local.replace(".", "") or local, _DOTLESS[domain]
    return f"{local}@{domain}"


def check_address(address: str) -> str:
    """Refuses anything but a plain ASCII addr-spec (a header or envelope cannot be bent)."""
    if not _ADDRESS.match(address) or ".." in address:
        raise BadAddress("not a plain ASCII email address")
    return address


def one_line(text: str) -> str:
    """Line breaks and other control characters become single spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def subject_for(kind: EventKind, notice: Notice) -> str:
    label = CATEGORY_LABELS[notice.category]
    title = one_line(notice.title)
    if kind == EventKind.WITHDRAWN:
        return f"Avis retiré : {title}"
    if kind == EventKind.CORRECTED:
        return f"Rectificatif — {label} : {title}"
    return f"{label} : {title}"


def notice_url(public_url: str, notice: Notice) -> str:
    return f"{public_url}/communes/{notice.commune}/notices/{notice.id}"


def french_date(moment: datetime) -> str:
    """`mardi 1er décembre 2026 à 8 h 00`: the site's formatter, with the weekday."""
    return french.date_time(moment, weekday=True)


def _qp(text: str) -> bytes:
    data = text.replace("\r\n", "\n").encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(
        b"\n", b"\r\n")


@dataclass(frozen=True)
class EmailDraft:
    """One edition's email, the same for every recipient but for the parts `personalise` fills."""

    envelope_from: str
    head: bytes  # common headers, CRLF-terminated, without the blank line
    text: str  # plain text, with UNSUBSCRIBE / MANAGE placeholders
    html: str
    message_id: str  # "<...{rid}@domain>" with "{rid}" left in
    boundary: str
    # What the email is about, so a sender can check the recipient still follows it.
    commune: str = ""
    category: str = ""

    def personalise(self, recipient_id: str, address: str, unsubscribe_url: str = "",
                    manage_url: str = "") -> bytes:
        """The whole message for one recipient, CRLF line endings, ready for SMTP DATA."""
        check_address(address)
        text = self.text.replace(UNSUBSCRIBE, unsubscribe_url).replace(MANAGE, manage_url)
        html_unsub, html_manage = str(escape(unsubscribe_url)), str(escape(manage_url))
        html = self.html.replace(UNSUBSCRIBE, html_unsub).replace(MANAGE, html_manage)
        personal = f"To: {address}\r\nMessage-ID: " + self.message_id.replace(
            "{rid}", recipient_id) + "\r\n"
        if unsubscribe_url:
            personal += f"List-Unsubscribe: <{unsubscribe_url}>\r\n"
        b = self.boundary.encode("ascii")
        return b"".join((
            self.head, personal.encode("ascii"), b"\r\n",
            b"--", b, b"\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n", _qp(text), b"\r\n",
            b"--", b, b"\r\nContent-Type: text/html; charset=\"utf-8\"\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n", _qp(html), b"\r\n",
            b"--", b, b"--\r\n",
        ))


def _head(*, from_name: str, from_address: str, subject: str, date: datetime,
          boundary: str, bulk: bool, list_id: str | None) -> bytes:
    msg = EmailMessage(policy=SMTP)
    local, _, domain = from_address.partition("@")
    msg["From"] = Address(one_line(from_name)[:100], local, domain)
    msg["Subject"] = one_line(subject)
    msg["Date"] = format_datetime(date.astimezone(PARIS))
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    if bulk:
        # RFC 8058: the List-Unsubscribe URL (per recipient) takes a POST with this body.
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["Auto-Submitted"] = "auto-generated"
        msg["Precedence"] = "bulk"
    if list_id:
        msg["List-Id"] = list_id
    # The headers only: the parts are assembled per recipient by EmailDraft.personalise.
    head = msg.as_bytes(policy=SMTP).split(b"\r\n\r\n", 1)[0]
    return head + b"\r\n"


def _domain(address: str) -> str:
    return address.rpartition("@")[2]


def build_notice(kind: EventKind, notice: Notice, commune_name: str, *, from_address: str,
                 public_url: str, now: datetime) -> EmailDraft:
    """The email of one notice edition: published, corrected (marked so) or withdrawn (short)."""
    context = {
        "kind": kind.value,
        "notice": notice,
        "label": CATEGORY_LABELS[notice.category],
        "commune": one_line(commune_name),
        "title": one_line(notice.title),
        "paragraphs": [p.strip() for p in re.split(r"\n\s*\n", notice.body) if p.strip()],
        "url": notice_url(public_url, notice),
        # Linked, not embedded: the email stays small for thousands of recipients, and a
        # mail reader that blocks remote images still shows the alt text and the link.
        "images": [f"{public_url.rstrip('/')}{a.path(notice.commune)}" for a in notice.images],
        "image_alt": f"Photo jointe à l’avis : {one_line(notice.title)}",
        "starts": french_date(notice.starts_at) if notice.starts_at else None,
        "ends": french_date(notice.ends_at) if notice.ends_at else None,
        "unsubscribe_url": UNSUBSCRIBE,
        "manage_url": MANAGE,
    }
    stem = "withdrawn" if kind == EventKind.WITHDRAWN else "notice"
    boundary = f"{_BOUNDARY}{notice.id}_{notice.version}"
    return EmailDraft(
        envelope_from=from_address,
        head=_head(from_name=f"Mairie de {commune_name}", from_address=from_address,
                   subject=subject_for(kind, notice), date=now, boundary=boundary,
                   bulk=True, list_id=f"Avis de {one_line(commune_name)[:60]} "
                   f"<{notice.commune}.avis.{_domain(from_address)}>"),
        text=_ENV.get_template(f"{stem}.txt").render(context),
        html=_ENV.get_template(f"{stem}.html").render(context),
        message_id=f"<{notice.id}.{notice.version}.{kind.value}.{{rid}}@{_domain(from_address)}>",
        boundary=boundary,
        commune=notice.commune,
        category=notice.category.value,
    )


def _to_one_resident(*, kind: str, template: str, subject: str, context: dict[str, Any],
                     address: str, from_address: str, now: datetime, nonce: str) -> bytes:
    """A mail about one resident's subscription (not a notice): no List-Unsubscribe, since
    there is nothing to leave yet or the mail is the way to manage it."""
    boundary = f"{_BOUNDARY}{kind}"
    draft = EmailDraft(
        envelope_from=from_address,
        head=_head(from_name="Avis de votre mairie", from_address=from_address,
                   subject=subject, date=now, boundary=boundary, bulk=False, list_id=None),
        text=_ENV.get_template(f"{template}.txt").render(context),
        html=_ENV.get_template(f"{template}.html").render(context),
        message_id=f"<{kind}.{{rid}}@{_domain(from_address)}>",
        boundary=boundary,
    )
    return draft.personalise(nonce, address)


def build_confirmation(*, address: str, confirm_url: str, communes: list[str],
                       from_address: str, now: datetime, nonce: str) -> bytes:
    """The email that asks a new subscriber to confirm (no unsubscribe: nothing to leave yet)."""
    return _to_one_resident(
        kind="confirm", template="confirm",
        subject="Confirmez votre inscription aux avis de votre mairie",
        context={"confirm_url": confirm_url, "communes": communes}, address=address,
        from_address=from_address, now=now, nonce=nonce)


def build_already_subscribed(*, address: str, manage_url: str, from_address: str,
                             now: datetime, nonce: str) -> bytes:
    """The answer to a new request for an address already confirmed: no link to confirm
    (it is confirmed), the way to change its choices instead."""
    return _to_one_resident(
        kind="already", template="already",
        subject="Vous êtes déjà abonné·e : gérer vos abonnements",
        context={"manage_url": manage_url}, address=address, from_address=from_address,
        now=now, nonce=nonce)


def build_new_links(*, address: str, manage_url: str, from_address: str, now: datetime,
                    nonce: str) -> bytes:
    """After the resident revoked their links: the one new way in, sent to the mailbox."""
    return _to_one_resident(
        kind="links", template="new_links",
        subject="Votre nouveau lien pour gérer vos abonnements",
        context={"manage_url": manage_url}, address=address, from_address=from_address,
        now=now, nonce=nonce)
