"""Staff previews: what each channel would make of a draft, asked of the channels themselves.

The draft is checked exactly as when publishing (422 otherwise), made into the notice it
would become (nothing stored), and sent to every channel at once over request-reply
(`channels.<channel>.preview.<commune>`, schemas.previews). Each channel answers from its
own format code, with its reach; one that is not running or is silent past
CRIEUR_PREVIEW_TIMEOUT_S is shown as unavailable, and the others still are.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from fastapi import APIRouter, Request
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel

from schemas import Commune, Notice, NoticeDraft, subjects
from schemas.deliveries import Channel
from schemas.events import EventKind
from schemas.previews import (
    PREVIEW_MODELS,
    ChannelUnavailable,
    PreviewChannels,
    PreviewRequest,
    Previews,
)
from schemas.versions import read_message
from services.notices import attachments, lifecycle
from services.notices.api import Ctx, Staff
from services.notices.application import Context, invalid, staff_commune

log = structlog.get_logger("crieur.notices.previews")

NOT_RUNNING = "Ce canal n'est pas en service en ce moment."
NO_SIGN = "Aucun panneau lumineux de cette commune n'est en service en ce moment."
SILENT = "Ce canal n'a pas répondu à temps."
UNREADABLE = "La réponse de ce canal est illisible."


async def ask(nc: Client, channel: Channel, request: PreviewRequest,
              timeout_s: float) -> BaseModel:
    """One channel's preview, or why there is none (never raises for the channel's sake)."""
    subject = subjects.channel_preview(channel, request.commune)
    try:
        reply = await nc.request(subject, request.model_dump_json().encode(), timeout=timeout_s)
    except NoRespondersError:
        return ChannelUnavailable(reason=NO_SIGN if channel is Channel.PANEL else NOT_RUNNING)
    except (NatsTimeoutError, TimeoutError):
        return ChannelUnavailable(reason=SILENT)
    try:
        if json.loads(reply.data).get("available") is False:
            return read_message(ChannelUnavailable, reply.data)
        return read_message(PREVIEW_MODELS[channel], reply.data)
    except (ValueError, AttributeError) as error:  # not JSON, not an object, not the model
        log.error("preview_reply_unreadable", channel=str(channel), error=str(error)[:300])
        return ChannelUnavailable(reason=UNREADABLE)


async def previews_for(nc: Client, request: PreviewRequest, timeout_s: float) -> Previews:
    """Every channel asked at once: the answer takes as long as the slowest, at most timeout_s."""
    order = (Channel.PUSH, Channel.SMS, Channel.WEBPUSH, Channel.PANEL, Channel.EMAIL)
    answers = await asyncio.gather(*(ask(nc, ch, request, timeout_s) for ch in order))
    by_channel = {str(ch): answer for ch, answer in zip(order, answers, strict=True)}
    return Previews(commune=request.commune,
                    channels=PreviewChannels.model_validate(
                        {k: v.model_dump() for k, v in by_channel.items()}))


router = APIRouter(prefix="/api/v1")


@router.post("/communes/{insee}/previews", response_model=Previews,
             summary="What each channel would send for a draft (staff), with its reach",
             description="The same body as publishing a notice, checked the same way (422). "
             "Nothing is stored or sent. Each channel answers from its own code: the phone "
             "notification, the SMS (encoding, parts, the characters that make it longer, "
             "parts to pay), the LED sign as a PNG, the email; and how many subscribers each "
             "would reach. A channel not running or silent is `available: false` with a "
             "reason.")
async def preview_draft(c: Ctx, member: Staff, insee: str, draft: NoticeDraft,
                        request: Request) -> Previews:
    commune = await staff_commune(c, insee, member)
    now = c.clock()
    resolved = await attachments.resolve(request, insee, draft)
    try:
        notice = lifecycle.create(resolved, notice_id=lifecycle.new_notice_id(), commune=insee,
                                  author=member.name, now=now)
    except lifecycle.InvalidTimes as error:
        raise invalid(error) from error
    asked = PreviewRequest(commune=insee, commune_name=commune.name, notice=notice)
    return await previews_for(c.store.nc, asked, c.settings.preview_timeout_s)


async def preview_change(c: Context, commune: Commune, notice: Notice,
                         kind: EventKind) -> Previews:
    """What each channel would send for a correction or a withdrawal of a stored notice, and
    to how many: the staff pages show it before the change is confirmed (issue 26)."""
    asked = PreviewRequest(commune=commune.insee, commune_name=commune.name, notice=notice,
                           kind=kind)
    return await previews_for(c.store.nc, asked, c.settings.preview_timeout_s)
