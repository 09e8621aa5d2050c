"""The push channel's settings (CRIEUR_FCM_*, CRIEUR_PUSH_*), on top of the kit's."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from crieur.channel.settings import ChannelSettings


class PushSettings(ChannelSettings):
    # populate_by_name: tests and code may pass fcm_credentials=... despite its aliases.
    model_config = SettingsConfigDict(env_prefix="CRIEUR_", extra="ignore",
                                      populate_by_name=True)

    # A service-account JSON file; the standard GOOGLE_APPLICATION_CREDENTIALS works too.
    # `make run` without one points the service at the local FCM stand-in.
    fcm_credentials: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("CRIEUR_FCM_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS"))
    # The Firebase project; default: the service account's project_id.
    fcm_project: str | None = None
    # The FCM API's base URL (the stand-in's in `make run` and the tests).
    fcm_url: str = "https://fcm.googleapis.com"
    # Seconds before a silent FCM counts as a transient failure.
    fcm_timeout_s: float = Field(default=10.0, gt=0)
    # FCM requests at once (each a thread running firebase-admin's synchronous call).
    push_concurrency: int = Field(default=8, ge=1, le=100)
    # Messages per second at most; FCM allows 600,000 a minute per project. 0: no pacing.
    push_rate_per_s: float = Field(default=0.0, ge=0)
    # Device registrations (POST, PUT, DELETE) allowed per client address per hour, counted
    # together by every process and kept across restarts (bucket push_limits).
    push_rate_limit_per_ip: int = Field(default=60, ge=1)
    # A registration answers 202 (and goes on) when FCM takes longer than this; keep it
    # under the front door's CRIEUR_CHANNEL_TIMEOUT_S.
    push_reply_within_s: float = Field(default=3.0, gt=0)
    # How often every stored token is checked with FCM (a dry run) and forgotten if dead;
    # 0: never.
    push_prune_every_s: float = Field(default=24 * 3600.0, ge=0)
    # /healthz for the launcher and operators (the routes themselves go through the front door).
    push_http_host: str = "127.0.0.1"
    push_http_port: int = Field(default=8084, ge=1, le=65535)

    @model_validator(mode="after")
    def _credentials_usable(self) -> PushSettings:
        # An impossible configuration is refused at start-up, not at the first notice.
        if self.fcm_credentials is None:
            raise ValueError("CRIEUR_FCM_CREDENTIALS (or GOOGLE_APPLICATION_CREDENTIALS) is "
                             "required: a service-account JSON file")
        try:
            data = json.loads(self.fcm_credentials.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"CRIEUR_FCM_CREDENTIALS: cannot read {self.fcm_credentials}: "
                             f"{error}") from error
        if data.get("type") != "service_account":
            raise ValueError("CRIEUR_FCM_CREDENTIALS must be a service-account JSON file")
        if self.fcm_project is None:
            self.fcm_project = data.get("project_id")
        if not self.fcm_project:
            raise ValueError("CRIEUR_FCM_PROJECT is required (the file names no project_id)")
        return self
