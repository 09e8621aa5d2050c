"""Answering staff previews (schemas.previews) over request-reply, for any channel.

A channel gives a function `PreviewRequest -> its preview model`; `serve_previews` answers
`channels.<channel>.preview.<commune>` with it, in a queue group so several processes share
the work. A request that cannot be read, or a preview that fails, is answered with
`ChannelUnavailable` and a reason (and logged), never left to time out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel

from schemas import subjects
from schemas.previews import ChannelUnavailable, PreviewRequest
from schemas.versions import NewerSchemaVersion, read_message

log = structlog.get_logger("crieur.channel.preview")

Preview = Callable[[PreviewRequest], Awaitable[BaseModel]]

UNREADABLE = "Demande d’aperçu illisible pour ce canal."
FAILED = "Ce canal n’a pas pu préparer l’aperçu."


async def reply_to(data: bytes, channel: str, preview: Preview) -> bytes:
    """The reply to one preview request (what goes wrong is said in it, not raised)."""
    reply: BaseModel
    try:
        request = read_message(PreviewRequest, data)
    except (ValueError, NewerSchemaVersion) as error:
        log.warning("preview_request_unreadable", channel=channel, error=str(error)[:300])
        reply = ChannelUnavailable(reason=UNREADABLE)
    else:
        try:
            reply = await preview(request)
        except Exception:
            log.exception("preview_failed", channel=channel, commune=request.commune)
            reply = ChannelUnavailable(reason=FAILED)
    return reply.model_dump_json().encode()


async def answer(msg: Msg, channel: str, preview: Preview) -> None:
    """One preview request answered on nats-py."""
    reply = await reply_to(msg.data, channel, preview)
    if msg.reply:
        await msg.respond(reply)


async def serve_previews(nc: Client, channel: str, preview: Preview,
                         commune: str = "*") -> Subscription:
    """Answer previews for `commune` (every commune by default) until unsubscribed."""
    async def on_request(msg: Msg) -> None:
        await answer(msg, channel, preview)

    return await nc.subscribe(subjects.channel_preview(channel, commune),
                              queue=f"{channel}-preview", cb=on_request)
