"""firebase-admin's endpoints are redirected in one place, and its errors keep their meaning."""

from __future__ import annotations

from pathlib import Path

import firebase_admin
import requests
from firebase_admin import exceptions, messaging

from crieur.channel.errors import Permanent, RecipientGone, Transient
from crieur_dev.standins.fcm import write_service_account
from services.push import sender


def test_the_pinned_firebase_admin_is_the_one_installed() -> None:
    assert firebase_admin.__version__ == sender.FIREBASE_ADMIN_VERSION
    pinned = (Path(__file__).resolve().parents[3] / "pyproject.toml").read_text()
    assert f'"firebase-admin=={sender.FIREBASE_ADMIN_VERSION}"' in pinned


def test_redirect_points_messages_and_topic_registrations_at_the_given_url(
        tmp_path: Path) -> None:
    credentials = write_service_account(tmp_path / "sa.json", "http://127.0.0.1:9/token", "p1")
    app = sender.open_app(credentials, "p1", "http://127.0.0.1:9/", 5)
    try:
        service = messaging._get_messaging_service(app)
        assert service._fcm_url == "http://127.0.0.1:9/v1/projects/p1/messages:send"
        assert service._fcm_topic_url == "http://127.0.0.1:9/v1/projects/p1/registrations"
        assert app.credential.get_credential()._token_uri == "http://127.0.0.1:9/token"
    finally:
        firebase_admin.delete_app(app)


def test_googles_url_leaves_firebase_admin_as_it_is(tmp_path: Path) -> None:
    credentials = write_service_account(tmp_path / "sa.json", "https://oauth2.googleapis.com/token",
                                        "p2")
    app = sender.open_app(credentials, "p2", "https://fcm.googleapis.com", 5)
    try:
        service = messaging._get_messaging_service(app)
        assert service._fcm_url == "https://fcm.googleapis.com/v1/projects/p2/messages:send"
    finally:
        firebase_admin.delete_app(app)


def response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    reply = requests.Response()
    reply.status_code = status
    reply.headers.update(headers or {})
    return reply


def test_errors_keep_their_meaning() -> None:
    quota = messaging.QuotaExceededError("quota", http_response=response(429, {"Retry-After": "7"}))
    classified = sender.classify(quota)
    assert isinstance(classified, Transient) and classified.retry_after == 7.0
    assert isinstance(sender.classify(exceptions.UnavailableError("down")), Transient)
    assert isinstance(sender.classify(exceptions.InternalError("oops")), Transient)
    assert isinstance(sender.classify(exceptions.DeadlineExceededError("slow")), Transient)
    assert isinstance(sender.classify(messaging.UnregisteredError("gone")), RecipientGone)
    assert isinstance(sender.classify(exceptions.InvalidArgumentError("bad"), to_token=True),
                      RecipientGone)
    bad_message = sender.classify(exceptions.InvalidArgumentError("bad"))
    assert isinstance(bad_message, Permanent) and not isinstance(bad_message, RecipientGone)
