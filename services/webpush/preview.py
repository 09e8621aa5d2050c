"""The staff preview of a draft's browser notification: built by the code that sends it."""

from __future__ import annotations

from datetime import datetime

from crieur.channel.port import Edition
from schemas.previews import PreviewRequest, WebpushPreview
from services.push.format import ttl_seconds
from services.webpush.handlers import notification, urgency
from services.webpush.subscriptions import Registry


def webpush_preview(registry: Registry, request: PreviewRequest, public_url: str,
                    now: datetime) -> WebpushPreview:
    notice = request.notice
    edition = Edition(kind=request.kind, notice=notice, commune_name=request.commune_name)
    shown = notification(edition, public_url)
    return WebpushPreview(title=shown["title"], body=shown["body"], tag=shown["tag"],
                          urgency=urgency(notice),
                          ttl_s=ttl_seconds(notice, request.kind, now),
                          reach=len(registry.matching(notice.commune, str(notice.category))))
