"""The notices service's settings (environment variables prefixed CRIEUR_)."""

from __future__ import annotations

from pydantic import Field

from crieur.settings import CommonSettings
from schemas.notice import Category


class NoticesSettings(CommonSettings):
    # http_host, http_port and public_url (the front door's address) are CommonSettings':
    # every service derives its links from them.
    max_body_bytes: int = 1_000_000
    # How long the front door waits for a channel to answer a forwarded request.
    channel_timeout_s: float = 5.0
    # How long a staff preview waits for each channel's answer (a channel silent longer is
    # shown as unavailable, the others still are).
    preview_timeout_s: float = 1.0
    # The largest attachment (image or PDF) staff may upload, in bytes, before an image is
    # reduced: a phone's photo (5-12 MB) must go through; it is stored at 2,000 px.
    attachment_max_bytes: int = 20_000_000
    # All the attachments of one commune together, in bytes: the object store is shared by
    # every commune of the installation, and one must not fill it for the others.
    attachments_quota_bytes: int = Field(default=500_000_000, ge=0)
    # How often scheduled notices are checked; a notice goes out at most this late.
    schedule_interval_s: float = 1.0
    # A withdrawal confirmed on the staff pages waits this long, with a button to undo it,
    # before anything is sent (services/notices/undo.py); 0: at once. The API's is at once.
    withdraw_undo_s: float = Field(default=60.0, ge=0, le=3600)
    # Staff sign-in throttle (services/notices/auth.py, docs/operations/security.md): attempts let
    # through freely per login and per client address, then the base and the cap of the
    # growing wait between two attempts.
    signin_free_failures: int = Field(default=5, ge=1)
    signin_client_free_failures: int = Field(default=20, ge=1)
    signin_delay_s: float = Field(default=1.0, gt=0)
    signin_max_delay_s: float = Field(default=300.0, gt=0)
    # argon2 password checks at once in this process (64 MiB each), and how many more may
    # wait for one; beyond, a sign-in is answered 429 at once.
    signin_concurrent_verifies: int = Field(default=2, ge=1, le=64)
    signin_verify_queue: int = Field(default=4, ge=0, le=1000)
    # Official alerts in (services/notices/capfeed.py): URLs of Atom feeds of CAP entries,
    # or of CAP documents, comma-separated; empty: none read.
    cap_feeds: str = ""
    # How often each feed is read (with ETag / If-Modified-Since).
    cap_poll_s: float = 300.0
    # Set aside (dead letter) any CAP document without an XML signature.
    cap_require_signature: bool = False

    @property
    def cap_feed_urls(self) -> tuple[str, ...]:
        return tuple(u.strip() for u in self.cap_feeds.split(",") if u.strip())
    # The SMS channel's own settings (same variables): the public page offers by SMS only
    # the categories the commune sends by SMS, alerts by default (SMS costs money).
    sms_categories: tuple[Category, ...] = (Category.ALERTE,)
    sms_commune_categories: dict[str, tuple[Category, ...]] = Field(default_factory=dict)

    def sms_categories_for(self, commune: str) -> tuple[Category, ...]:
        return self.sms_commune_categories.get(commune, self.sms_categories)
