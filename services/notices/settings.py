"""The notices service's settings (environment variables prefixed CRIEUR_)."""

from __future__ import annotations

from pydantic import model_validator

from crieur.settings import CommonSettings


class NoticesSettings(CommonSettings):
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # The address at which residents reach the public pages; links in feeds and CAP use it.
    # Unset, it is the address this service answers at (so the links work out of the box).
    public_url: str = ""
    max_body_bytes: int = 1_000_000
    # How long the front door waits for a channel to answer a forwarded request.
    channel_timeout_s: float = 5.0
    # How long a staff preview waits for each channel's answer (a channel silent longer is
    # shown as unavailable, the others still are).
    preview_timeout_s: float = 1.0
    # The largest attachment (image or PDF) staff may upload, in bytes.
    attachment_max_bytes: int = 5_000_000
    # How often scheduled notices are checked; a notice goes out at most this late.
    schedule_interval_s: float = 1.0

    @model_validator(mode="after")
    def _public_url_follows_the_port(self) -> NoticesSettings:
        if not self.public_url:
            # A wildcard address is where the service listens, not one a browser can reach.
            host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::", "") else self.http_host
            host = f"[{host}]" if ":" in host else host
            self.public_url = f"http://{host}:{self.http_port}"
        return self
