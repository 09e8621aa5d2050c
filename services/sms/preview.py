"""The staff preview of a draft's SMS: built by the code that sends it (handlers.draft_for)."""

from __future__ import annotations

from pydantic import BaseModel

from crieur.channel.port import Edition
from schemas.previews import ChannelUnavailable, PreviewRequest, SmsPreview
from services.sms.handlers import draft_for
from services.sms.settings import SmsSettings
from services.sms.subscribers import Registry

OFF = "Le service SMS n'est pas configuré : aucun SMS ne partirait."


def sms_preview(settings: SmsSettings, registry: Registry, request: PreviewRequest,
                on: bool = True) -> BaseModel:
    """The SMS the notice would make, and what it costs for the numbers it would reach."""
    if not on:
        return ChannelUnavailable(reason=OFF)
    notice = request.notice
    sms = draft_for(settings, Edition(kind=request.kind, notice=notice,
                                      commune_name=request.commune_name)).sms
    carried = notice.category in settings.categories_for(notice.commune)
    reach = len(registry.matching(notice.commune, str(notice.category))) if carried else 0
    return SmsPreview(text=sms.text, encoding=sms.encoding.value, parts=sms.parts,
                      long_characters=list(sms.ucs2_characters), cut=sms.cut, reach=reach,
                      parts_to_pay=reach * sms.parts, category_carried=carried)
