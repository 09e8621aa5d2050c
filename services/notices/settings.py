"""The notices service's settings (environment variables prefixed CRIEUR_)."""

from __future__ import annotations

from crieur.settings import CommonSettings


class NoticesSettings(CommonSettings):
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # The address at which residents reach the public pages; links in feeds and CAP use it.
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = 1_000_000
    # How long the front door waits for a channel to answer a forwarded request.
    channel_timeout_s: float = 5.0
    # How often scheduled notices are checked; a notice goes out at most this late.
    schedule_interval_s: float = 1.0
