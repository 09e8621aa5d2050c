"""Signed links (confirm, unsubscribe, manage) and keyed recipient ids, from one secret key.

Nothing is stored for a link: the signature is the proof. A confirmation link expires
(CRIEUR_EMAIL_CONFIRM_MAX_AGE_S); unsubscribe and manage links do not, because they sit
in old emails that a resident may open months later.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, Signer, URLSafeTimedSerializer

PREFIX = "/api/v1/subscriptions/email"


class BadLink(ValueError):
    """A link that was altered, made with another key, or is too old."""


class Links:
    def __init__(self, secret_key: str, public_url: str, confirm_max_age_s: int) -> None:
        self._key = hashlib.sha256(b"crieur-email-recipient:" + secret_key.encode()).digest()
        self.public_url = public_url.rstrip("/")
        self.confirm_max_age_s = confirm_max_age_s
        self._confirm = URLSafeTimedSerializer(secret_key, salt="crieur-email-confirm")
        # Two links per email sent: a bare signature of the id (no JSON, no zlib) is ~10x
        # cheaper than a serializer's token, and the id is already URL-safe hex.
        self._unsubscribe = Signer(secret_key, salt="crieur-email-unsubscribe")
        self._manage = Signer(secret_key, salt="crieur-email-manage")

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
        return f"{self.public_url}{PREFIX}/unsubscribe/{self._unsubscribe.sign(rid).decode()}"

    def manage_url(self, rid: str) -> str:
        return f"{self.public_url}{PREFIX}/manage/{self._manage.sign(rid).decode()}"

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
        return self._read(self._unsubscribe, token)

    def read_manage(self, token: str) -> str:
        return self._read(self._manage, token)

    @staticmethod
    def _read(signer: Signer, token: str) -> str:
        try:
            return signer.unsign(token).decode("ascii")
        except (BadSignature, UnicodeError) as error:
            raise BadLink("bad signature") from error
