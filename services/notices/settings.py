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
    # How often scheduled notices are checked; a notice goes out at most this late.
    schedule_interval_s: float = 1.0
    # The SMS channel's own settings (same variables): the public page offers by SMS only
    # the categories the commune sends by SMS, alerts by default (SMS costs money).
    sms_categories: tuple[Category, ...] = (Category.ALERTE,)
    sms_commune_categories: dict[str, tuple[Category, ...]] = Field(default_factory=dict)

    def sms_categories_for(self, commune: str) -> tuple[Category, ...]:
        return self.sms_commune_categories.get(commune, self.sms_categories)
