"""Settings every service shares; each service's settings.py extends this class."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRIEUR_", extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    log_level: str = "INFO"
    log_format: str = "auto"
    data_dir: Path = Path("var")
    # False in production: streams and buckets are made by `crieur provision` alone, and a
    # service only checks that what it needs exists (deploy/README.md).
    ensure_streams: bool = True
    # Where this process's replies arrive. Production gives each NATS user its own
    # (`_INBOX_<user>`, deploy/nats/auth.conf), so no service can read another's replies.
    nats_inbox_prefix: str = "_INBOX"
