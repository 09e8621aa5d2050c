"""Signed links (confirm, unsubscribe, manage) and keyed recipient ids, from one secret key.

Nothing is stored for a link: the signature is the proof. A confirmation link expires
(CRIEUR_EMAIL_CONFIRM_MAX_AGE_S); unsubscribe and manage links do not, because they sit
in old emails that a resident may open months later. They carry the second they were made,
so a resident can revoke every link made before a moment (`Subscriber.links_valid_since`),
and they are signed with their own key (CRIEUR_EMAIL_LINK_KEY, by default the secret key),
so an operator can void every link ever sent without forgetting a single subscriber.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

from itsdangerous import (
    BadSignature,
    SignatureExpired,
    Signer,
    TimestampSigner,
    URLSafeTimedSerializer,
)

PREFIX = "/api/v1/subscriptions/email"


class BadLink(ValueError):
    """A link that was altered, made with another key, or is too old."""


class _DatedSigner(TimestampSigner):
    """itsdangerous's TimestampSigner on the service's clock (tests move it by hand)."""

    def __init__(self, key: str, salt: str, clock: Callable[[], float]) -> None:
        super().__init__(key, salt=salt)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class Links:
    def __init__(self, secret_key: str, public_url: str, confirm_max_age_s: int,
                 link_key: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self._key = hashlib.sha256(b"crieur-email-recipient:" + secret_key.encode()).digest()
        self.public_url = public_url.rstrip("/")
        self.confirm_max_age_s = confirm_max_age_s
        link_key = link_key or secret_key
        self._confirm = URLSafeTimedSerializer(link_key, salt="crieur-email-confirm")
        # Two links per email sent: a bare signature of the id and the second it was made
        # (no JSON, no zlib) is ~10x cheaper than a serializer's token.
        self._signers = {kind: _DatedSigner(link_key, f"crieur-email-{kind}", clock)
                         for kind in ("unsubscribe", "manage")}
        # Links made before they carried their time: still read, as made at the epoch (so
        # any revocation voids them).
        self._legacy = {kind: Signer(link_key, salt=f"crieur-email-{kind}")
                        for kind in ("unsubscribe", "manage")}

    def recipient_id(self, normalised_address: str) -> str:
        """Keyed hash of the address: stable, so subscribing twice makes one subscription,
        and useless to anyone without the key (no dictionary of addresses reverses it)."""
        return hmac.new(self._key, normalised_address.encode(), hashlib.sha256).hexdigest()[:32]

    def log_id(self, normalised_address: str) -> str:
        """What logs show instead of an address."""
        return self.recipient_id(normalised_address)[:12]

    # -- making ---------------------------------------------------------------------

    def confirm_url(self, rid: str, follows: list[dict[str, Any]]) -> str:
        token = self._confirm.dumps({"r": rid, "f": follows})
        return f"{self.public_url}{PREFIX}/confirm/{token}"

    def unsubscribe_url(self, rid: str) -> str:
        return f"{self.public_url}{PREFIX}/unsubscribe/{self._sign('unsubscribe', rid)}"

    def manage_url(self, rid: str) -> str:
        return f"{self.public_url}{PREFIX}/manage/{self._sign('manage', rid)}"

    def _sign(self, kind: str, rid: str) -> str:
        return self._signers[kind].sign(rid).decode()

    # -- reading --------------------------------------------------------------------

    def read_confirm(self, token: str) -> tuple[str, list[dict[str, Any]]]:
        try:
            data = self._confirm.loads(token, max_age=self.confirm_max_age_s)
        except SignatureExpired as error:
            raise BadLink("expired") from error
        except BadSignature as error:
            raise BadLink("bad signature") from error
        if not isinstance(data, dict) or not isinstance(data.get("r"), str):
            raise BadLink("bad payload")
        follows = data.get("f")
        return data["r"], follows if isinstance(follows, list) else []

    def read_unsubscribe(self, token: str) -> str:
        return self.read("unsubscribe", token)[0]

    def read_manage(self, token: str) -> str:
        return self.read("manage", token)[0]

    def read(self, kind: str, token: str) -> tuple[str, int]:
        """The recipient id an unsubscribe or manage link names, and the second (Unix
        time) it was made: 0 for a link made before links carried it."""
        try:
            rid, made = self._signers[kind].unsign(token, return_timestamp=True)
            return rid.decode("ascii"), int(made.timestamp())
        except BadSignature:
            pass
        except UnicodeError as error:
            raise BadLink("bad signature") from error
        try:
            return self._legacy[kind].unsign(token).decode("ascii"), 0
        except (BadSignature, UnicodeError) as error:
            raise BadLink("bad signature") from error
