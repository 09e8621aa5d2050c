"""The FCM message of each notice event, exactly (services/push/format.py is pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from firebase_admin import messaging

from crieur.channel.port import Edition
from schemas.events import EventKind
from schemas.notice import Category, Notice, NoticeState
from services.push import format

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def notice(**fields: object) -> Notice:
    data: dict[str, object] = {
        "id": "a1b2c3d4e5f60718", "commune": "70299", "category": Category.ALERTE,
        "title": "Tempête : restez chez vous", "body": "Vents à 120 km/h.", "author": "Mairie",
        "version": 1, "state": NoticeState.PUBLISHED, "created_at": NOW, "updated_at": NOW,
        "published_at": NOW, "ends_at": NOW + timedelta(hours=14)}
    return Notice.model_validate(data | fields)


def encoded(kind: EventKind, n: Notice) -> dict[str, object]:
    message = format.message(Edition(kind, n, "Lavoncourt"), format.topic(n.commune, n.category),
                             NOW, "https://crieur.example.fr")
    return dict(messaging._MessagingService.encode_message(message))


def test_topics_are_ascii_one_per_commune_and_category() -> None:
    assert format.topic("70299", Category.EVENEMENT) == "crieur-70299-evenement"
    assert format.topic("2A004", "alerte") == "crieur-2A004-alerte"


def test_an_alert_is_high_priority_everywhere_and_lives_until_its_end() -> None:
    assert encoded(EventKind.PUBLISHED, notice()) == {
        "topic": "crieur-70299-alerte",
        "notification": {"title": "Lavoncourt · Alerte", "body": "Tempête : restez chez vous"},
        "data": {"action": "show", "kind": "published", "notice_id": "a1b2c3d4e5f60718",
                 "version": "1", "commune": "70299", "commune_name": "Lavoncourt",
                 "category": "alerte", "title": "Lavoncourt · Alerte",
                 "body": "Tempête : restez chez vous",
                 "url": "https://crieur.example.fr/api/v1/communes/70299/notices/a1b2c3d4e5f60718"},
        "android": {"collapse_key": "a1b2c3d4e5f60718", "priority": "high", "ttl": "50400s",
                    "notification": {"tag": "a1b2c3d4e5f60718", "channel_id": "alertes"}},
        "apns": {"headers": {"apns-priority": "10", "apns-push-type": "alert",
                             "apns-collapse-id": "a1b2c3d4e5f60718",
                             "apns-expiration": str(int(NOW.timestamp()) + 50400)},
                 "payload": {"aps": {"alert": {"title": "Lavoncourt · Alerte",
                                               "body": "Tempête : restez chez vous"},
                                     "sound": "default", "thread-id": "70299",
                                     "interruption-level": "time-sensitive"}}},
        "webpush": {"headers": {"Urgency": "high", "TTL": "50400"},
                    "notification": {"title": "Lavoncourt · Alerte",
                                     "body": "Tempête : restez chez vous",
                                     "tag": "a1b2c3d4e5f60718"},
                    "fcm_options": {"link": "https://crieur.example.fr/api/v1/communes/70299/"
                                            "notices/a1b2c3d4e5f60718"}},
    }


def test_other_categories_go_with_normal_priority() -> None:
    message = encoded(EventKind.PUBLISHED, notice(category=Category.TRAVAUX, ends_at=None))
    assert message["android"]["priority"] == "normal"  # type: ignore[index]
    assert message["android"]["ttl"] == f"{28 * 24 * 3600}s"  # type: ignore[index]
    assert message["apns"]["headers"]["apns-priority"] == "5"  # type: ignore[index]
    assert message["apns"]["payload"]["aps"]["interruption-level"] == "active"  # type: ignore[index]
    assert message["webpush"]["headers"]["Urgency"] == "normal"  # type: ignore[index]
    assert message["notification"] == {"title": "Lavoncourt · Travaux",  # type: ignore[comparison-overlap]
                                       "body": "Tempête : restez chez vous"}


def test_a_correction_is_marked_and_replaces_the_same_notification() -> None:
    message = encoded(EventKind.CORRECTED, notice(version=2, state=NoticeState.CORRECTED))
    assert message["notification"]["body"] == "Rectificatif : Tempête : restez chez vous"  # type: ignore[index]
    assert message["android"]["collapse_key"] == "a1b2c3d4e5f60718"  # type: ignore[index]
    assert message["android"]["notification"]["tag"] == "a1b2c3d4e5f60718"  # type: ignore[index]


def test_a_withdrawal_is_a_data_message_that_removes_it() -> None:
    message = encoded(EventKind.WITHDRAWN, notice(state=NoticeState.WITHDRAWN,
                                                  ends_at=NOW - timedelta(hours=1)))
    assert "notification" not in message
    assert message["data"]["action"] == "remove"  # type: ignore[index]
    assert message["apns"] == {  # still delivered a day after the end: the phone may show it
        "headers": {"apns-priority": "5", "apns-push-type": "background",
                    "apns-collapse-id": "a1b2c3d4e5f60718",
                    "apns-expiration": str(int(NOW.timestamp()) + 24 * 3600)},
        "payload": {"aps": {"content-available": 1}}}


def test_the_time_to_live_ends_at_the_notice_end_within_fcm_limits() -> None:
    assert format.ttl_seconds(notice(ends_at=NOW + timedelta(days=90)),
                              EventKind.PUBLISHED, NOW) == 28 * 24 * 3600
    assert format.ttl_seconds(notice(ends_at=NOW + timedelta(minutes=5)),
                              EventKind.PUBLISHED, NOW) == 300


PHOTO = {"name": "Pont fermé.jpg", "url": "https://crieur.example.fr/communes/70299/"
         "attachments/abcdef0123456789", "media_type": "image/jpeg", "size": 120_000,
         "id": "abcdef0123456789"}
DECREE = {"name": "Arrêté.pdf", "url": "https://crieur.example.fr/communes/70299/"
          "attachments/0123456789abcdef", "media_type": "application/pdf",
          "id": "0123456789abcdef"}


def test_the_first_photo_goes_as_the_notification_image_on_every_platform() -> None:
    message = encoded(EventKind.PUBLISHED, notice(attachments=[DECREE, PHOTO]))
    image = "https://crieur.example.fr/communes/70299/attachments/abcdef0123456789"
    assert message["notification"] == {"title": "Lavoncourt · Alerte",  # type: ignore[comparison-overlap]
                                       "body": "Tempête : restez chez vous", "image": image}
    assert message["data"]["image"] == image  # type: ignore[index]
    assert message["apns"]["fcm_options"] == {"image": image}  # type: ignore[index]
    assert message["apns"]["payload"]["aps"]["mutable-content"] == 1  # type: ignore[index]
    assert message["webpush"]["notification"]["image"] == image  # type: ignore[index]


def test_no_image_without_a_hosted_photo_or_over_plain_http() -> None:
    elsewhere = PHOTO | {"id": None, "url": "https://ailleurs.example.org/photo.jpg"}
    for attachments in ([DECREE], [{k: v for k, v in elsewhere.items() if v is not None}]):
        message = encoded(EventKind.PUBLISHED, notice(attachments=attachments))
        assert "image" not in message["notification"]  # type: ignore[operator]
        assert "fcm_options" not in message["apns"]  # type: ignore[operator]
    plain = format.message(Edition(EventKind.PUBLISHED, notice(attachments=[PHOTO]), "Lavoncourt"),
                           "crieur-70299-alerte", NOW, "http://127.0.0.1:8080")
    assert plain.notification is not None and plain.notification.image is None
    assert "image" not in plain.data  # type: ignore[operator]
