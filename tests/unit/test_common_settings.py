"""What every service reads alike: the public URL (one setting, following the front door's
port) and the NATS URL (refused at start-up when the NATS client could not read it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from crieur.settings import CommonSettings
from crieur_dev.standins.fcm import write_service_account
from services.email.links import Links
from services.email.settings import EmailSettings
from services.notices.settings import NoticesSettings
from services.panel.settings import PanelSettings
from services.push.settings import PushSettings
from services.sms.providers.brevo import BrevoProvider
from services.sms.service import make_provider
from services.sms.settings import SmsSettings
from tests.helpers import repo_root


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("CRIEUR_PUBLIC_URL", "CRIEUR_HTTP_HOST", "CRIEUR_HTTP_PORT",
                 "CRIEUR_NATS_URL", "CRIEUR_SMS_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRIEUR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CRIEUR_FCM_CREDENTIALS", str(write_service_account(
        tmp_path / "sa.json", "http://127.0.0.1:1/token", "mairie-app")))
    return monkeypatch


EVERY_SERVICE = (NoticesSettings, EmailSettings, SmsSettings, PushSettings, PanelSettings)


def test_moving_the_front_door_moves_every_service_s_links(env: pytest.MonkeyPatch) -> None:
    assert {s().public_url for s in EVERY_SERVICE} == {"http://127.0.0.1:8080"}
    env.setenv("CRIEUR_HTTP_PORT", "9123")
    assert {s().public_url for s in EVERY_SERVICE} == {"http://127.0.0.1:9123"}

    email = EmailSettings()
    links = Links(email.secret_key(), email.public_url, email.email_confirm_max_age_s)
    assert links.confirm_url("r1", []).startswith(
        "http://127.0.0.1:9123/api/v1/subscriptions/email/confirm/")
    provider = make_provider(SmsSettings())  # the stand-in, its webhook secret made and kept
    assert isinstance(provider, BrevoProvider)
    assert provider._web_url is not None
    assert provider._web_url.startswith("http://127.0.0.1:9123/webhooks/sms/")
    assert provider._web_url.endswith("/receipts")


def test_one_public_url_set_is_every_service_s(env: pytest.MonkeyPatch) -> None:
    env.setenv("CRIEUR_HTTP_PORT", "9123")
    env.setenv("CRIEUR_PUBLIC_URL", "https://avis.mairie.example/")
    assert {s().public_url for s in EVERY_SERVICE} == {"https://avis.mairie.example"}


def test_a_wildcard_listening_address_is_not_the_links_host(env: pytest.MonkeyPatch) -> None:
    env.setenv("CRIEUR_HTTP_HOST", "0.0.0.0")
    assert EmailSettings().public_url == "http://127.0.0.1:8080"
    env.setenv("CRIEUR_HTTP_HOST", "::1")
    assert SmsSettings().public_url == "http://[::1]:8080"


@pytest.mark.parametrize("password", ["a/b", "a?b", "a#b", "a@b", "a%2Fb"])
def test_a_nats_password_the_client_cannot_read_is_refused_by_name(
        env: pytest.MonkeyPatch, password: str) -> None:
    env.setenv("CRIEUR_NATS_URL", f"tls://n1:4222,tls://email:{password}@n2.example:4222")
    for settings in EVERY_SERVICE:
        with pytest.raises(ValidationError, match="CRIEUR_NATS_URL") as raised:
            settings()
        assert "openssl rand -hex 32" in str(raised.value)
        assert password not in str(raised.value), "the password is never repeated"


@pytest.mark.parametrize("url", [
    "nats://127.0.0.1:4222",
    "tls://email:0f3a9c2b7d@n1.example:4222,tls://email:0f3a9c2b7d@n2.example:4222",
    "127.0.0.1:4222",  # nats-py reads it as nats://127.0.0.1:4222
])
def test_a_readable_nats_url_is_kept_as_it_is(env: pytest.MonkeyPatch, url: str) -> None:
    env.setenv("CRIEUR_NATS_URL", url)
    assert CommonSettings().nats_url == url


@pytest.mark.parametrize("service", ["notices", "email", "sms", "push", "panel"])
def test_a_service_given_such_a_url_stops_at_once_with_one_line(
        env: pytest.MonkeyPatch, service: str) -> None:
    env.setenv("CRIEUR_NATS_URL", "tls://email:Zm9v/YmFy@nats.example:4222")
    done = subprocess.run([sys.executable, "-m", f"services.{service}"], capture_output=True,
                          text=True, timeout=60, cwd=repo_root(), env=dict(os.environ))
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [done.stderr.strip()], "one line"
    assert done.stderr.startswith(f"{service}: configuration refused: nats_url: CRIEUR_NATS_URL")
    assert "Zm9v/YmFy" not in done.stderr
