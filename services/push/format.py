"""Notice -> FCM message (pure): one message per (notice event, topic), in French.

- A topic per (commune, category), ASCII: `crieur-70299-alerte`.
- Alerts go with high priority (Android `high`; APNs `apns-priority: 10` and the
  `time-sensitive` interruption level; Web Push `Urgency: high`), the rest with normal.
- The notice id is the collapse key and the notification tag: a correction replaces the
  notification already on the phone. A withdrawal is a data message (`action: remove`)
  that tells the app to take it away.
- The time-to-live ends at the notice's `ends_at` (FCM keeps a message 28 days at most).
- A notice's first photo goes as the notification's image (`notification.image`, and
  APNs' `fcm_options.image` with `mutable-content`), only over https: FCM refuses others.
"""

from __future__ import annotations

from datetime import datetime

from firebase_admin import messaging

from crieur.channel.port import Edition
from schemas.events import EventKind
from schemas.notice import CATEGORY_LABELS, Category, Notice

# FCM's longest time-to-live: 4 weeks.
MAX_TTL_S = 28 * 24 * 3600
# A withdrawal still worth delivering after the notice's end (the phone may still show it).
MIN_WITHDRAWAL_TTL_S = 24 * 3600

TOPIC_PREFIX = "crieur"


def topic(commune: str, category: Category | str) -> str:
    """The FCM topic of one commune's notices of one category (ASCII, FCM's alphabet)."""
    return f"{TOPIC_PREFIX}-{commune}-{Category(category).value}"


def ttl_seconds(notice: Notice, kind: EventKind, now: datetime) -> int:
    """Seconds FCM keeps the message for a phone that is off: until the notice ends."""
    ttl = MAX_TTL_S
    if notice.ends_at is not None:
        ttl = max(0, min(MAX_TTL_S, int((notice.ends_at - now).total_seconds())))
    if kind is EventKind.WITHDRAWN:
        ttl = max(ttl, MIN_WITHDRAWAL_TTL_S)
    return ttl


def texts(edition: Edition) -> tuple[str, str]:
    """The notification's title and body as the phone shows them."""
    notice = edition.notice
    title = f"{edition.commune_name} · {CATEGORY_LABELS[notice.category]}"
    if edition.kind is EventKind.CORRECTED:
        return title, f"Rectificatif : {notice.title}"
    if edition.kind is EventKind.WITHDRAWN:
        return title, f"Avis retiré : {notice.title}"
    return title, notice.title


def message(edition: Edition, to_topic: str, now: datetime, public_url: str) -> messaging.Message:
    """The FCM v1 message for one notice event sent to one topic."""
    notice = edition.notice
    alert = notice.category is Category.ALERTE
    ttl = ttl_seconds(notice, edition.kind, now)
    title, body = texts(edition)
    link = (f"{public_url.rstrip('/')}/api/v1/communes/{notice.commune}/notices/{notice.id}")
    data = {
        "action": "remove" if edition.kind is EventKind.WITHDRAWN else "show",
        "kind": str(edition.kind),
        "notice_id": notice.id,
        "version": str(notice.version),
        "commune": notice.commune,
        "commune_name": edition.commune_name,
        "category": notice.category.value,
        "title": title,
        "body": body,
        "url": link,
    }
    image = notice.image_url(public_url)
    if image is not None and not image.startswith("https://"):
        image = None
    if image is not None:
        data["image"] = image
    expiration = str(int(now.timestamp()) + ttl)
    priority = "high" if alert else "normal"
    if edition.kind is EventKind.WITHDRAWN:
        # Data only: the app removes the notification tagged with the notice id; nothing
        # new pops up. APNs delivers a silent push only with priority 5.
        return messaging.Message(
            topic=to_topic, data=data,
            android=messaging.AndroidConfig(collapse_key=notice.id, priority=priority, ttl=ttl),
            apns=messaging.APNSConfig(
                headers={"apns-priority": "5", "apns-push-type": "background",
                         "apns-collapse-id": notice.id, "apns-expiration": expiration},
                payload=messaging.APNSPayload(aps=messaging.Aps(content_available=True))),
            webpush=messaging.WebpushConfig(headers={"Urgency": priority, "TTL": str(ttl)}),
        )
    return messaging.Message(
        topic=to_topic,
        notification=messaging.Notification(title=title, body=body, image=image),
        data=data,
        android=messaging.AndroidConfig(
            collapse_key=notice.id, priority=priority, ttl=ttl,
            notification=messaging.AndroidNotification(
                tag=notice.id, channel_id="alertes" if alert else "avis")),
        apns=messaging.APNSConfig(
            headers={"apns-priority": "10" if alert else "5", "apns-push-type": "alert",
                     "apns-collapse-id": notice.id, "apns-expiration": expiration},
            payload=messaging.APNSPayload(aps=messaging.Aps(
                alert=messaging.ApsAlert(title=title, body=body), sound="default",
                thread_id=notice.commune, mutable_content=True if image else None,
                custom_data={"interruption-level": "time-sensitive" if alert else "active"})),
            fcm_options=messaging.APNSFCMOptions(image=image) if image else None),
        webpush=messaging.WebpushConfig(
            headers={"Urgency": priority, "TTL": str(ttl)},
            notification=messaging.WebpushNotification(title=title, body=body, tag=notice.id,
                                                       image=image),
            fcm_options=messaging.WebpushFCMOptions(link=link) if link.startswith("https://")
            else None),
    )
