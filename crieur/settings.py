"""Settings every service shares; each service's settings.py extends this class."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from crieur.channel.ratelimit import Network, parse_networks

# What nats-py cannot read in a URL's user or password: it splits the URL itself and
# decodes no percent-escape, so `tls://u:a/b@host` fails with "invalid connect url option"
# and `a%2Fb` reaches the server as it is (Authorization Violation).
_UNREADABLE_IN_CREDENTIALS = "/?#@%"


def check_nats_url(url: str) -> str:
    """CRIEUR_NATS_URL as nats-py can use it, else a ValueError naming the setting.

    One URL or several, comma-separated (a cluster). Checked at start-up: a password
    nats-py cannot parse would otherwise become one traceback per reconnect attempt.
    """
    for part in (p.strip() for p in url.split(",")):
        if not part:
            continue
        # nats-py takes `host:port` without a scheme too.
        scheme, _, rest = part.partition("://") if "://" in part else ("nats", "", part)
        # The user and password end at the last @ before the host: a / ? # in them would
        # otherwise be taken for the start of a path, so look before any URL parser does.
        userinfo, at, _ = rest.rpartition("@")
        if at and any(c in userinfo for c in _UNREADABLE_IN_CREDENTIALS):
            raise ValueError(
                f"CRIEUR_NATS_URL ({scheme}://***@...): the user or password contains one of "
                f"{' '.join(_UNREADABLE_IN_CREDENTIALS)}, which the NATS client cannot read "
                "(nor percent-encoded); make passwords with `openssl rand -hex 32`")
    return url


class CommonSettings(BaseSettings):
    # hide_input_in_errors: a refused value may be a password (CRIEUR_NATS_URL's).
    model_config = SettingsConfigDict(env_prefix="CRIEUR_", extra="ignore",
                                      hide_input_in_errors=True)

    nats_url: str = "nats://127.0.0.1:4222"
    log_level: str = "INFO"
    log_format: str = "auto"
    data_dir: Path = Path("var")
    # False in production: streams and buckets are made by `crieur provision` alone, and a
    # service only checks that what it needs exists (docs/operations/security.md).
    ensure_streams: bool = True
    # Where this process's replies arrive. Production gives each NATS user its own
    # (`_INBOX_<user>`, deploy/nats/auth.conf), so no service can read another's replies.
    nats_inbox_prefix: str = "_INBOX"
    # The front door (services/notices) listens here. Every service reads them, because
    # the links they all build default to the front door's address (public_url).
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # The address at which residents reach the front door: feeds, CAP, email links, the SMS
    # receipts webhook and push links all start with it. Unset, it is the address the front
    # door answers at, so the links work out of the box wherever CRIEUR_HTTP_PORT moves it.
    public_url: str = ""
    # Reverse proxies in front of the front door (CRIEUR_TRUSTED_PROXIES, read by the front
    # door's sign-in throttle and by the channels' limits: addresses or CIDR
    # networks, comma-separated). Only when the front door's peer is one of them is the
    # client read from X-Forwarded-For; by default nobody is trusted, since anyone can
    # write the header (and every forged value would be a fresh rate limit).
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    def proxies(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Any setting may also come from a file named after it (`CRIEUR_NATS_URL`...) in
        $CREDENTIALS_DIRECTORY: systemd's LoadCredential= (readable by this service's user
        alone), or compose's per-service secrets. A secret in the environment is readable
        by every process of the same user (/proc/<pid>/environ) and by its children."""
        credentials = os.environ.get("CREDENTIALS_DIRECTORY")
        if credentials:
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=credentials)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator("nats_url")
    @classmethod
    def _nats_url_readable(cls, value: str) -> str:
        return check_nats_url(value)

    @model_validator(mode="after")
    def _public_url_follows_the_port(self) -> CommonSettings:
        if not self.public_url:
            # A wildcard address is where the service listens, not one a browser can reach.
            host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::", "") else self.http_host
            host = f"[{host}]" if ":" in host else host
            self.public_url = f"http://{host}:{self.http_port}"
        self.public_url = self.public_url.rstrip("/")
        return self


S = TypeVar("S", bound=BaseSettings)


def load(settings: type[S], service: str) -> S:
    """The service's settings, or exit at once with one line naming what is refused (a
    traceback restarted by systemd every few seconds says it less clearly)."""
    try:
        return settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}" for e in error.errors())
        sys.exit(f"{service}: configuration refused: {problems}")
