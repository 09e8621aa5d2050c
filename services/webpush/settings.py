"""The Web Push channel's settings (CRIEUR_WEBPUSH_*), on top of the kit's."""

from __future__ import annotations

import re

from py_vapid import Vapid02
from pydantic import Field, field_validator

from crieur.channel.settings import ChannelSettings
from crieur.secretfile import kept_secret

# Where the VAPID key made on first run is kept, under CRIEUR_DATA_DIR.
VAPID_KEY_FILE = "webpush-vapid-key"
# RFC 8292's "sub": how a push service's operator reaches ours.
SUBJECT = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+(/\S*)?)$")


class WebpushSettings(ChannelSettings):
    # The VAPID private key: 32 raw bytes (or DER) in base64url. Unset: one is made on
    # first run and kept in <CRIEUR_DATA_DIR>/webpush-vapid-key. Browsers' subscriptions
    # are bound to it: a new key makes every subscription useless (they are forgotten).
    webpush_vapid_private_key: str | None = None
    # Who a push service can contact about our requests (a mailto: or https: URL).
    webpush_subject: str = "mailto:crieur@localhost"
    # host:port pairs, comma-separated, accepted as endpoints besides the known push
    # services, plain http too (the stand-in `make run` starts). Never a resident's choice.
    webpush_extra_hosts: str = ""
    # Requests to push services at once.
    webpush_concurrency: int = Field(default=32, ge=1, le=1000)
    # Seconds before a silent push service counts as a transient failure.
    webpush_timeout_s: float = Field(default=10.0, gt=0)
    # Subscription changes (register, read, remove) allowed per client address per hour,
    # counted together by every process and kept across restarts (bucket webpush_limits).
    webpush_rate_limit_per_ip: int = Field(default=60, ge=1)
    # /healthz for the launcher and operators (the routes go through the front door).
    webpush_http_host: str = "127.0.0.1"
    webpush_http_port: int = Field(default=8090, ge=1, le=65535)

    @field_validator("webpush_subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        if not SUBJECT.match(value):
            raise ValueError("a mailto: address or an https: URL, e.g. mailto:mairie@example.fr")
        return value

    def extra_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.webpush_extra_hosts.split(",")
                         if h.strip())

    def vapid(self) -> Vapid02:
        """The VAPID key pair: given, or made once (32 random bytes are a P-256 key)."""
        key = self.webpush_vapid_private_key or kept_secret(self.data_dir / VAPID_KEY_FILE)
        return Vapid02.from_string(key)
