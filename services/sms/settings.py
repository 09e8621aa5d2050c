"""The SMS channel's settings (CRIEUR_SMS_*, CRIEUR_PUBLIC_URL)."""

from __future__ import annotations

from datetime import time
from enum import StrEnum

from pydantic import Field, field_validator

from crieur.channel.settings import ChannelSettings
from crieur.secretfile import kept_secret
from schemas.notice import Category
from services.sms.phones import FRENCH_MOBILE_REGIONS, parse_regions

# Where `make run` keeps the generated webhook secret (read by the SMS stand-in too).
WEBHOOK_SECRET_FILE = "sms-webhook-secret"


class ProviderName(StrEnum):
    OVH = "ovh"
    BREVO = "brevo"
    # Brevo's HTTP API served by crieur_dev.standins.sms (make run, tests): CRIEUR_SMS_API_URL.
    STANDIN = "standin"


def parse_budget(value: str) -> tuple[int, int]:
    """"200,20" -> (200 code SMS an hour in all, 20 an hour per number prefix)."""
    try:
        every, per_prefix = (int(part) for part in value.split(","))
    except ValueError as error:
        raise ValueError("the code budget is '<per hour in all>,<per hour per prefix>', "
                         "e.g. 200,20") from error
    if every < 1 or per_prefix < 1:
        raise ValueError("each budget must be at least 1")
    return every, per_prefix


def parse_hours(value: str) -> tuple[time, time] | None:
    """"21:00-08:00" -> (21:00, 08:00); "" -> None (never quiet)."""
    value = value.strip()
    if not value:
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError as error:
        raise ValueError("quiet hours are HH:MM-HH:MM, e.g. 21:00-08:00") from error
    if start == end:
        raise ValueError("quiet hours must not start and end at the same time")
    return start, end


class SmsSettings(ChannelSettings):
    sms_provider: ProviderName = ProviderName.STANDIN
    # Replaces the provider's base URL (Brevo: https://api.brevo.com, OVHcloud:
    # https://eu.api.ovh.com/1.0), so a stand-in can take its place.
    sms_api_url: str | None = None
    # The sender shown on phones: up to 11 letters and digits, or a number.
    sms_sender: str = Field(default="Crieur", min_length=1, max_length=15)
    sms_brevo_api_key: str | None = None
    sms_ovh_application_key: str | None = None
    sms_ovh_application_secret: str | None = None
    sms_ovh_consumer_key: str | None = None
    sms_ovh_service_name: str | None = None
    # Messages per second sent to the provider (its quota).
    sms_rate: float = Field(default=10.0, gt=0, le=1000)
    # Sends at once.
    sms_concurrency: int = Field(default=4, ge=1, le=100)
    # Seconds before a silent provider counts as a transient failure.
    sms_timeout_s: float = Field(default=15.0, gt=0)
    sms_max_parts: int = Field(default=3, ge=1, le=10)
    # Replace ’ « » ê œ... by what keeps the meaning, to stay in GSM-7 (half the price).
    sms_transliterate: bool = True
    # Paris hours when only alerts go; other SMS wait for the end. Empty: never quiet.
    sms_quiet_hours: str = "21:00-08:00"
    # A held SMS waits until the quiet hours end, or at most this long before it is looked
    # at again. Each look is a redelivery that counts in CRIEUR_CHANNEL_MAX_ATTEMPTS, so by
    # default one wait until the end (a withdrawal or an expiry is caught then anyway).
    sms_hold_recheck_s: float = Field(default=86400.0, gt=0)
    # Categories SMS carries in every commune (SMS costs money), and per commune, e.g.
    # CRIEUR_SMS_COMMUNE_CATEGORIES='{"70299": ["alerte", "travaux"]}'.
    sms_categories: tuple[Category, ...] = (Category.ALERTE,)
    sms_commune_categories: dict[str, tuple[Category, ...]] = Field(default_factory=dict)
    # The number residents reply STOP to, shown in every SMS ("STOP au 36180").
    sms_stop_number: str | None = None
    # The secret path segment of the provider webhooks (/webhooks/sms/<secret>/...).
    # Unset: every webhook call gets 404 and changes nothing.
    sms_webhook_secret: str | None = Field(default=None, min_length=16)
    # Keys the recipient ids (a keyed hash of the number). Unset: kept in
    # <data_dir>/sms-secret-key, generated on first start.
    sms_secret_key: str | None = Field(default=None, min_length=32)
    # The link to the full notice when an SMS is cut.
    sms_notice_url: str = "{public_url}/communes/{commune}/notices/{id}"
    # Confirmation codes: how long one is valid, and wrong tries before it is void.
    sms_code_ttl_s: int = Field(default=900, ge=60)
    sms_code_attempts: int = Field(default=5, ge=1, le=20)
    # A number never confirmed is purged this long after it was typed or its last code
    # expired (as email forgets unconfirmed addresses after 7 days).
    sms_unconfirmed_max_age_s: int = Field(default=7 * 24 * 3600, ge=3600)
    # Subscription requests per hour per client address (its /64 for IPv6) and per number,
    # counted together by every process and kept across restarts (bucket sms_limits).
    sms_rate_per_client: int = Field(default=20, ge=1)
    sms_rate_per_number: int = Field(default=3, ge=1)
    # Regions whose mobile numbers may subscribe (ISO 3166-1 codes, comma-separated);
    # other numbers get 422 and no SMS. Default: France and its overseas departments
    # (services.sms.phones.FRENCH_MOBILE_REGIONS says why NC, PF and WF are not in it).
    sms_countries: str = ",".join(FRENCH_MOBILE_REGIONS)
    # Confirmation-code SMS per hour, "<in all>,<per number prefix>" (prefix: the country
    # code and the first three digits of the national number, e.g. 33612). Shared by every
    # process and kept across restarts; once reached, requests get 429 until the hour ends.
    sms_code_budget: str = "200,20"
    # /healthz of the SMS service (its routes for residents go through the front door).
    sms_http_host: str = "127.0.0.1"
    sms_http_port: int = Field(default=8086, ge=0, le=65535)
    # The stand-in's port (make run): its URL when CRIEUR_SMS_API_URL is unset.
    sms_standin_port: int = Field(default=8087, ge=1, le=65535)

    @field_validator("sms_quiet_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_hours(value)
        return value

    @field_validator("sms_countries")
    @classmethod
    def _countries(cls, value: str) -> str:
        parse_regions(value)
        return value

    @field_validator("sms_code_budget")
    @classmethod
    def _budget(cls, value: str) -> str:
        parse_budget(value)
        return value

    def countries(self) -> frozenset[str]:
        return parse_regions(self.sms_countries)

    def code_budget(self) -> tuple[int, int]:
        return parse_budget(self.sms_code_budget)

    def quiet_hours(self) -> tuple[time, time] | None:
        return parse_hours(self.sms_quiet_hours)

    def categories_for(self, commune: str) -> tuple[Category, ...]:
        return self.sms_commune_categories.get(commune, self.sms_categories)

    def secret_key(self) -> str:
        """The configured key, else the one kept under the data dir (made once, mode 0600)."""
        return self.sms_secret_key or kept_secret(self.data_dir / "sms-secret-key", 48)

    def webhook_secret(self) -> str | None:
        """The webhooks' secret; with the stand-in (make run) one is made and kept if unset,
        so the stand-in can post replies and receipts. A real provider needs it set."""
        if self.sms_webhook_secret or self.sms_provider is not ProviderName.STANDIN:
            return self.sms_webhook_secret
        return kept_secret(self.data_dir / WEBHOOK_SECRET_FILE)

    def api_url(self) -> str | None:
        if self.sms_api_url or self.sms_provider is not ProviderName.STANDIN:
            return self.sms_api_url
        return f"http://127.0.0.1:{self.sms_standin_port}"

    def missing(self) -> list[str]:
        """The variables the chosen provider needs and lacks (the channel is then off)."""
        needed: dict[ProviderName, dict[str, str | None]] = {
            ProviderName.OVH: {
                "CRIEUR_SMS_OVH_APPLICATION_KEY": self.sms_ovh_application_key,
                "CRIEUR_SMS_OVH_APPLICATION_SECRET": self.sms_ovh_application_secret,
                "CRIEUR_SMS_OVH_CONSUMER_KEY": self.sms_ovh_consumer_key,
                "CRIEUR_SMS_OVH_SERVICE_NAME": self.sms_ovh_service_name},
            ProviderName.BREVO: {"CRIEUR_SMS_BREVO_API_KEY": self.sms_brevo_api_key},
            ProviderName.STANDIN: {},
        }
        return [name for name, value in needed[self.sms_provider].items() if not value]
