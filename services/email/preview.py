"""The staff preview of a draft's email: built by the code that sends it (format.build_notice)."""

from __future__ import annotations

from datetime import datetime

from schemas.previews import EmailPreview, PreviewRequest
from services.email.format import MANAGE, UNSUBSCRIBE, build_notice, subject_for
from services.email.settings import EmailSettings
from services.email.subscribers import Registry

# Each resident's own links are made at send time; the preview shows where they go.
PERSONAL_LINK_TEXT = "[lien personnel]"


def email_preview(settings: EmailSettings, registry: Registry, request: PreviewRequest,
                  now: datetime) -> EmailPreview:
    """The email the notice would make, and how many addresses it would reach."""
    notice = request.notice
    draft = build_notice(request.kind, notice, request.commune_name,
                         from_address=settings.smtp_from, public_url=settings.public_url,
                         now=now)
    text = draft.text.replace(UNSUBSCRIBE, PERSONAL_LINK_TEXT).replace(MANAGE, PERSONAL_LINK_TEXT)
    html = draft.html.replace(UNSUBSCRIBE, "#").replace(MANAGE, "#")
    reach = len(registry.matching(notice.commune, notice.category.value))
    return EmailPreview(subject=subject_for(request.kind, notice), text=text,
                        html=html, reach=reach)
