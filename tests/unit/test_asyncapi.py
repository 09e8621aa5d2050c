"""The AsyncAPI description of the bus in the repository is the one the code generates."""

from __future__ import annotations

import json

from schemas import subjects
from schemas.asyncapi import PATH, generated, rendered
from schemas.deliveries import Channel


def test_the_asyncapi_document_is_up_to_date() -> None:
    assert PATH.read_text() == rendered(), (
        "schemas/asyncapi.json is stale: run `make asyncapi` (or `make schemas`) and commit")


def test_it_describes_every_subject_and_payload_of_the_bus() -> None:
    document = generated()
    assert document["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in document["channels"].values()}
    assert subjects.notice("{commune}", "{notice_id}") in addresses
    for channel in (Channel.EMAIL, Channel.PUSH, Channel.SMS):
        assert subjects.jobs(channel, "{commune}") in addresses
        assert subjects.channel_http(channel) in addresses
    for channel in Channel:
        assert subjects.delivery(channel, "{commune}") in addresses
    assert subjects.dead_letter("{service}") in addresses
    models = set(document["components"]["schemas"])
    assert {"NoticePublished", "NoticeCorrected", "NoticeWithdrawn", "Job", "DeliveryReport",
            "DeadLetter", "ChannelHttpRequest", "ChannelHttpReply"} <= models
    # A job's payload is the Job model, field for field.
    job = document["components"]["schemas"]["Job"]
    assert {"notice_id", "recipient", "kind", "version"} <= set(job["properties"])
    assert "Crieur-Trace-Id" in json.dumps(document["channels"])
