"""The email channel's settings (CRIEUR_SMTP_*, CRIEUR_EMAIL_*, CRIEUR_PUBLIC_URL)."""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from crieur.channel.ratelimit import Network, parse_networks
from crieur.channel.settings import ChannelSettings


class SmtpTls(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class EmailSettings(ChannelSettings):
    # The SMTP relay. `make run` starts a local stand-in and sets these unless
    # CRIEUR_SMTP_HOST is set already.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    # The envelope sender and the From address; the display name is the commune's.
    smtp_from: str = "avis@crieur.localhost"
    smtp_tls: SmtpTls = SmtpTls.NONE
    # Verify the relay's certificate (off only for a relay with a self-signed one).
    smtp_tls_verify: bool = True
    # A CA bundle to trust for the relay (a private CA), in PEM.
    smtp_ca_file: Path | None = None
    # Persistent SMTP connections, hence emails sent at once.
    smtp_pool: int = Field(default=4, ge=1, le=100)
    # Seconds before a silent relay counts as a transient failure.
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    # Emails per second at most (the relay's quota); unset means only the pool limits.
    # Alerts keep their priority inside it (crieur.channel.lanes).
    smtp_rate: float | None = Field(default=None, gt=0, le=10_000)
    # The older name of the same quota (0: none); CRIEUR_SMTP_RATE wins when both are set.
    smtp_rate_per_s: float = Field(default=0.0, ge=0)
    # Signs the links (confirm, unsubscribe, manage) and keys the recipient ids. Unset:
    # kept in <data_dir>/email-secret-key, generated on first start.
    email_secret_key: str | None = Field(default=None, min_length=32)
    # Signs the links alone when set (the secret key still keys the recipient ids): a new
    # value voids every link ever sent without forgetting a single subscriber.
    email_link_key: str | None = Field(default=None, min_length=32)
    # Hard bounces (SMTP 5xx) after which an address gets no more email.
    email_max_bounces: int = Field(default=3, ge=1)
    # How long a confirmation link stays valid.
    email_confirm_max_age_s: int = Field(default=7 * 24 * 3600, ge=60)
    # Subscription requests allowed per client address, and per email address, per hour,
    # counted together by every process and kept across restarts (bucket email_limits).
    email_rate_per_client: int = Field(default=20, ge=1)
    email_rate_per_address: int = Field(default=3, ge=1)
    # Addresses of reverse proxies in front of the front door (comma-separated): behind
    # them, the client is read from X-Forwarded-For, else every resident would share
    # the proxy's rate limit.
    email_trusted_proxies: str = ""

    @field_validator("email_trusted_proxies")
    @classmethod
    def _email_networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    def proxies(self) -> tuple[Network, ...]:
        """CRIEUR_TRUSTED_PROXIES, and the email channel's own older setting."""
        return super().proxies() + parse_networks(self.email_trusted_proxies)
    # The kit's name for this channel (work queue jobs.<name>.*, durable consumers, sent
    # records): two instances sharing one NATS (staging, tests) each set their own.
    email_channel_name: str = Field(default="email", pattern=r"^[a-z][a-z0-9-]{0,30}$")
    # /healthz of the email service (its routes for residents go through the front door).
    email_http_host: str = "127.0.0.1"
    email_http_port: int = Field(default=8085, ge=0, le=65535)

    @field_validator("smtp_from")
    @classmethod
    def _from_is_an_address(cls, value: str) -> str:
        from services.email.format import check_address

        return check_address(value)

    @model_validator(mode="after")
    def _login_is_whole(self) -> EmailSettings:
        # Refused at start-up rather than at the first email.
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("CRIEUR_SMTP_USERNAME and CRIEUR_SMTP_PASSWORD go together")
        return self

    def secret_key(self) -> str:
        """The configured key, else the one kept under the data dir (made once, mode 0600)."""
        if self.email_secret_key:
            return self.email_secret_key
        path = self.data_dir / "email-secret-key"
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        try:
            # O_EXCL: two email workers starting together agree on one key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
        return key
