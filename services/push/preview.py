"""The staff preview of a draft's phone notification: built by the code that sends it (format)."""

from __future__ import annotations

from datetime import datetime

from crieur.channel.port import Edition
from crieur.mirror import BucketMirror
from schemas.notice import Category
from schemas.previews import PreviewRequest, PushPreview, PushReach
from services.push import format
from services.push.devices import Device


def devices_following(devices: BucketMirror[Device], topic: str) -> int:
    """Phones FCM has on this topic and that still want it."""
    return sum(1 for d in devices.values.values() if topic in d.topics and topic in d.wanted)


def push_preview(devices: BucketMirror[Device], request: PreviewRequest,
                 now: datetime) -> PushPreview:
    """The notification the notice would make, and how many phones follow its topic."""
    notice = request.notice
    edition = Edition(kind=request.kind, notice=notice, commune_name=request.commune_name)
    title, body = format.texts(edition)
    topic = format.topic(notice.commune, notice.category)
    return PushPreview(
        title=title, body=body, high_priority=notice.category is Category.ALERTE,
        ttl_s=format.ttl_seconds(notice, request.kind, now),
        reach=PushReach(devices=devices_following(devices, topic), topics=[topic]))
