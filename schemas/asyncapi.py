"""The AsyncAPI description of the bus, generated from the code (`make asyncapi`).

Subjects come from the subject map (schemas.subjects), payloads from the models of
schemas/, headers from crieur's trace contract; FastStream's AsyncAPI generator writes the
document. `schemas/asyncapi.json` is kept in the repository, and tests/unit fails when it
no longer matches what this module generates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from faststream.nats import JStream, NatsBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from schemas import subjects
from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from schemas.deadletters import DeadLetter
from schemas.deliveries import Channel, DeliveryReport
from schemas.events import NoticeCorrected, NoticePublished, NoticeWithdrawn
from schemas.jobs import ATTEMPTS_HEADER, Job, JobGroup
from schemas.previews import PREVIEW_MODELS, PreviewRequest
from schemas.streams import DEADLETTERS_STREAM, DELIVERIES_STREAM, JOBS_STREAM, NOTICES_STREAM

PATH = Path(__file__).parent / "asyncapi.json"

# The headers that follow a notice across services (crieur.trace), said once here.
TRACE_HEADERS = ("Crieur-Notice-Id (the notice), Crieur-Trace-Id (one per staff request), "
                 "Crieur-Published-At (epoch seconds, when the front door published)")
CHANNELS = tuple(c.value for c in Channel)


def broker() -> NatsBroker:
    """A broker never connected: it only declares what travels on the bus, and who sends it."""
    bus = NatsBroker("nats://localhost:4222", specification_url="nats://localhost:4222",
                     description="NATS JetStream: the bus and the store of a village")
    notices = JStream(NOTICES_STREAM, declare=False)
    for model, kind in ((NoticePublished, "published"), (NoticeCorrected, "corrected"),
                        (NoticeWithdrawn, "withdrawn")):
        bus.publisher(
            subjects.notice("{commune}", "{notice_id}"), stream=notices, schema=model,
            title=f"notice-{kind}",
            description=(f"The front door (services/notices) publishes a notice {kind} "
                         f"event on stream {NOTICES_STREAM}, with Nats-Msg-Id "
                         f"<notice id>:<version>:<kind> and the headers {TRACE_HEADERS}. "
                         "Read by the sign (services/panel) and every channel's fan-out; "
                         "the last message of a subject is the notice's current state."))
    jobs = JStream(JOBS_STREAM, declare=False)
    deliveries = JStream(DELIVERIES_STREAM, declare=False)
    for channel in CHANNELS:
        if channel != Channel.PANEL.value:
            bus.publisher(
                subjects.jobs(channel, "{commune}"), stream=jobs, schema=Job,
                title=f"jobs-{channel}",
                description=(f"The {channel} channel's fan-out queues one job per recipient "
                             f"on the work queue {JOBS_STREAM}, in groups (JobGroup, "
                             f"Nats-Msg-Id = JobGroup.key) or alone (Job, Nats-Msg-Id = "
                             f"Job.key, and {ATTEMPTS_HEADER} when a job of a group is queued "
                             f"again alone), the event's trace headers copied; its worker "
                             f"takes them."))
            bus.publisher(
                subjects.jobs(channel, "{commune}"), stream=jobs, schema=JobGroup,
                title=f"jobs-{channel}-group",
                description=(f"The jobs of one notice event for up to "
                             f"CRIEUR_CHANNEL_GROUP_SIZE recipients of the {channel} "
                             f"channel in one message (schema_version 2)."))
            bus.publisher(
                subjects.jobs(channel, "{commune}", alert=True), stream=jobs, schema=JobGroup,
                title=f"jobs-{channel}-alert",
                description=(f"The alert lane of the {channel} channel: the jobs of "
                             f"`alerte` notices, alone (Job) or in groups (JobGroup) as on "
                             f"the normal lane, taken by its own worker "
                             f"({channel}-alert-worker) ahead of the normal lane's "
                             f"(crieur/channel/lanes.py)."))
        bus.publisher(
            subjects.delivery(channel, "{commune}"), stream=deliveries, schema=DeliveryReport,
            title=f"deliveries-{channel}",
            description=(f"What the {channel} channel did with each notice on "
                         f"{DELIVERIES_STREAM}: one report per job and outcome, or one for a "
                         "batch of jobs of the same notice version and outcome (count, "
                         "targets; read with schemas.deliveries.read_reports); carries "
                         "Crieur-Notice-Id and Crieur-Trace-Id."))
    bus.publisher(
        subjects.dead_letter("{service}"), stream=JStream(DEADLETTERS_STREAM, declare=False),
        schema=DeadLetter, title="deadletters",
        description=("A message a service could not handle, kept with the reason for "
                     "`crieur dead-letters list` and `replay`."))
    for channel in (Channel.EMAIL.value, Channel.PUSH.value, Channel.SMS.value,
                    Channel.WEBPUSH.value):
        _channel_routes(bus, channel)
    for channel in (Channel.EMAIL, Channel.PUSH, Channel.SMS, Channel.WEBPUSH, Channel.PANEL):
        _channel_preview(bus, channel.value, PREVIEW_MODELS[channel.value])
    return bus


def _channel_preview(bus: NatsBroker, channel: str, answer: type[BaseModel]) -> None:
    subject = subjects.channel_preview(channel, "{commune}")

    @bus.subscriber(subject, title=f"channels-{channel}-preview",
                    description=(f"The front door asks the {channel} channel what it would "
                                 "send for a staff draft (POST /api/v1/communes/{insee}/"
                                 "previews); request-reply, nothing is sent or stored."))
    @bus.publisher(f"{subject}.reply", schema=answer, title=f"channels-{channel}-preview-reply",
                   description=(f"The {channel} channel's preview, sent to the request's "
                                "inbox (or a ChannelUnavailable)."))
    async def preview(request: PreviewRequest) -> BaseModel:
        raise NotImplementedError  # a declaration: the channel's preview handler answers


def _channel_routes(bus: NatsBroker, channel: str) -> None:
    @bus.subscriber(subjects.channel_http(channel), queue=f"{channel}-http",
                    title=f"channels-{channel}-http",
                    description=(f"The front door forwards the {channel} channel's HTTP routes "
                                 "(subscriptions, devices, provider webhooks) over "
                                 "request-reply; the channel answers a ChannelHttpReply."))
    @bus.publisher(f"{subjects.channel_http(channel)}.reply", schema=ChannelHttpReply,
                   title=f"channels-{channel}-http-reply",
                   description=f"The {channel} channel's answer, sent to the request's inbox.")
    async def route(request: ChannelHttpRequest) -> ChannelHttpReply:
        raise NotImplementedError  # a declaration: the channel's router answers for real


def generated() -> dict[str, Any]:
    spec = AsyncAPI(broker(), title="Crieur bus", version="1",
                    description="Every message between Crieur's services, on NATS JetStream.",
                    schema_version="3.0.0")
    document: dict[str, Any] = spec.to_specification().to_jsonable()
    return document


def rendered() -> str:
    """The exact text of schemas/asyncapi.json."""
    return json.dumps(generated(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> int:
    PATH.write_text(rendered())
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
