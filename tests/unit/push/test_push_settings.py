"""The push service refuses an impossible configuration at start-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from crieur_dev.standins.fcm import write_service_account
from services.push.settings import PushSettings


def test_credentials_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRIEUR_FCM_CREDENTIALS", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    with pytest.raises(ValidationError, match="CRIEUR_FCM_CREDENTIALS"):
        PushSettings()


def test_the_project_comes_from_the_file_and_google_s_variable_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_service_account(tmp_path / "sa.json", "http://127.0.0.1:1/token", "mairie-app")
    monkeypatch.delenv("CRIEUR_FCM_CREDENTIALS", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    settings = PushSettings()
    assert settings.fcm_credentials == path and settings.fcm_project == "mairie-app"
    monkeypatch.setenv("CRIEUR_FCM_PROJECT", "other")
    assert PushSettings().fcm_project == "other"


def test_a_file_that_is_not_a_service_account_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"type": "authorized_user"}))
    monkeypatch.setenv("CRIEUR_FCM_CREDENTIALS", str(tmp_path / "x.json"))
    with pytest.raises(ValidationError, match="service-account"):
        PushSettings()
