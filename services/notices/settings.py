"""The notices service's settings (environment variables prefixed CRIEUR_)."""

from __future__ import annotations

from pydantic import Field

from crieur.settings import CommonSettings


class NoticesSettings(CommonSettings):
    # http_host, http_port and public_url (the front door's address) are CommonSettings':
    # every service derives its links from them.
    max_body_bytes: int = 1_000_000
    # How long the front door waits for a channel to answer a forwarded request.
    channel_timeout_s: float = 5.0
    # How long a staff preview waits for each channel's answer (a channel silent longer is
    # shown as unavailable, the others still are).
    preview_timeout_s: float = 1.0
    # The largest attachment (image or PDF) staff may upload, in bytes.
    attachment_max_bytes: int = 5_000_000
    # All the attachments of one commune together, in bytes: the object store is shared by
    # every commune of the installation, and one must not fill it for the others.
    attachments_quota_bytes: int = Field(default=500_000_000, ge=0)
    # How often scheduled notices are checked; a notice goes out at most this late.
    schedule_interval_s: float = 1.0
    # Staff sign-in throttle (services/notices/auth.py, README "Staff pages"): attempts let
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
