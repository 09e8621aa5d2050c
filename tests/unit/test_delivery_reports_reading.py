"""DELIVERIES messages are read in one place, whether they carry one report or a batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas.deliveries import ALREADY_SENT, DeliveryOutcome, DeliveryReport, read_reports
from schemas.versions import NewerSchemaVersion


def report(notice_id: str, outcome: DeliveryOutcome = DeliveryOutcome.SENT) -> DeliveryReport:
    return DeliveryReport(channel="email", commune="70299", notice_id=notice_id, version=1,
                          outcome=outcome, at=datetime(2026, 11, 26, 10, tzinfo=UTC))


def test_one_report_a_list_or_an_object_holding_a_list() -> None:
    one, two = report("a"), report("b", DeliveryOutcome.BOUNCED)
    assert read_reports(one.model_dump_json()) == [one]
    as_list = json.dumps([one.model_dump(mode="json"), two.model_dump(mode="json")])
    assert read_reports(as_list) == [one, two]
    wrapped = json.dumps({"reports": [two.model_dump(mode="json")], "batch": 7})
    assert read_reports(wrapped) == [two]


def test_fields_a_newer_channel_added_are_ignored_and_newer_versions_refused() -> None:
    data = report("a").model_dump(mode="json")
    assert read_reports(json.dumps(data | {"cost_eur": 0.05})) == [report("a")]
    with pytest.raises(NewerSchemaVersion):
        read_reports(json.dumps(data | {"schema_version": 99}))
    with pytest.raises(ValidationError):
        read_reports(json.dumps({"channel": "email"}))
    with pytest.raises(ValueError):
        read_reports(b"not json")


def test_a_job_reported_again_after_a_crash_counts_once_in_the_reach() -> None:
    from services.notices.reach import ReachCounter

    counter = ReachCounter(js=None)  # type: ignore[arg-type]  # counting only, no bus
    sent = report("a").model_copy(update={"target": "r1"})
    again = sent.model_copy(update={"detail": ALREADY_SENT})
    assert again.repeated and not sent.repeated
    for each in (sent, again, report("a", DeliveryOutcome.BOUNCED)):
        counter.add(each)
    email = counter.reach_of("70299", "a").email
    assert (email.sent, email.bounced) == (1, 1)
    assert counter.repeated == 1
