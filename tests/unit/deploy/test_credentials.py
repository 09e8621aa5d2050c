"""Secrets as files readable by one service alone: systemd's LoadCredential= puts them in
$CREDENTIALS_DIRECTORY, compose's per-service secrets in /run/secrets (docs/operations/deployment.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crieur_dev.standins.fcm import write_service_account
from services.email.settings import EmailSettings
from services.notices.settings import NoticesSettings
from services.panel.settings import PanelSettings
from services.push.settings import PushSettings
from services.sms.settings import SmsSettings

EVERY_SERVICE = (NoticesSettings, EmailSettings, SmsSettings, PushSettings, PanelSettings)
URL = "tls://email:from-the-credential@nats.mairie.example:4222"


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("CRIEUR_NATS_URL", "CRIEUR_EMAIL_SECRET_KEY", "CRIEUR_SMS_SECRET_KEY",
                 "CRIEUR_SMTP_USERNAME", "CRIEUR_SMTP_PASSWORD", "CRIEUR_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRIEUR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CRIEUR_FCM_CREDENTIALS", str(write_service_account(
        tmp_path / "sa.json", "http://127.0.0.1:1/token", "mairie-app")))
    folder = tmp_path / "credentials"
    folder.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    return folder


@pytest.mark.parametrize("settings", EVERY_SERVICE)
def test_every_service_reads_its_nats_url_from_its_credentials(
        credentials: Path, settings: type[NoticesSettings]) -> None:
    # Written by hand, the file ends with a newline: not part of the password.
    (credentials / "CRIEUR_NATS_URL").write_text(URL + "\n")
    assert settings().nats_url == URL


def test_secret_keys_and_passwords_come_from_credentials_too(credentials: Path) -> None:
    (credentials / "CRIEUR_NATS_URL").write_text(URL)
    (credentials / "CRIEUR_EMAIL_SECRET_KEY").write_text("e" * 48)
    (credentials / "CRIEUR_SMTP_USERNAME").write_text("crieur")
    (credentials / "CRIEUR_SMTP_PASSWORD").write_text("smtp-secret")
    (credentials / "CRIEUR_SMS_SECRET_KEY").write_text("s" * 64)
    email = EmailSettings()
    assert email.secret_key() == "e" * 48
    assert (email.smtp_username, email.smtp_password) == ("crieur", "smtp-secret")
    assert SmsSettings().secret_key() == "s" * 64


def test_a_credential_is_checked_like_the_variable(credentials: Path) -> None:
    (credentials / "CRIEUR_NATS_URL").write_text("tls://email:a/b@nats.mairie.example:4222")
    with pytest.raises(ValueError, match="CRIEUR_NATS_URL"):
        EmailSettings()


def test_without_credentials_the_environment_is_read_as_before(
        credentials: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    (credentials / "CRIEUR_NATS_URL").write_text(URL)
    monkeypatch.setenv("CRIEUR_NATS_URL", "nats://127.0.0.1:4222")
    assert EmailSettings().nats_url == "nats://127.0.0.1:4222"
