"""The JOBS message contract: a job alone or a group, as the fan-out writes and a worker reads."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crieur.channel.fanout import JobTemplate
from schemas.deliveries import Channel
from schemas.events import EventKind
from schemas.jobs import Job, JobGroup, read_jobs
from schemas.versions import NewerSchemaVersion, read_message

FIELDS = {"channel": Channel.EMAIL, "commune": "70299", "notice_id": "n1", "version": 2,
          "kind": EventKind.CORRECTED}


def test_a_rendered_group_reads_back_as_each_recipients_job() -> None:
    template = JobTemplate(Job(**FIELDS, recipient="x"))
    payload, key = template.render_group(["a", "b-_=", "c"])
    jobs, grouped = read_jobs(payload)
    assert grouped
    assert jobs == [Job(**FIELDS, recipient=r) for r in ("a", "b-_=", "c")]
    assert key == JobGroup(**FIELDS, recipients=("a", "b-_=", "c")).key


def test_one_recipient_is_a_plain_job_with_its_own_key() -> None:
    template = JobTemplate(Job(**FIELDS, recipient="x"))
    payload, key = template.render_group(["a"])
    assert read_jobs(payload) == ([Job(**FIELDS, recipient="a")], False)
    assert key == Job(**FIELDS, recipient="a").key


def test_a_group_key_is_the_same_for_the_same_recipients_and_never_a_job_key() -> None:
    group = JobGroup(**FIELDS, recipients=("a", "b"))
    assert group.key == JobGroup(**FIELDS, recipients=("a", "b")).key
    assert group.key != JobGroup(**FIELDS, recipients=("a", "c")).key
    assert group.key != JobGroup(**FIELDS, recipients=("b", "a")).key
    assert all(group.key != job.key for job in group.jobs())


def test_a_reader_of_jobs_alone_keeps_a_group_aside_instead_of_misreading_it() -> None:
    payload = JobGroup(**FIELDS, recipients=("a", "b")).model_dump_json()
    # What a worker built before groups did: a dead letter, to replay after its upgrade.
    with pytest.raises(NewerSchemaVersion):
        read_message(Job, payload)


def test_a_newer_contract_and_a_bad_group_are_refused() -> None:
    newer = JobGroup(**FIELDS, recipients=("a",)).model_dump_json().replace(
        '"schema_version":2', '"schema_version":3')
    with pytest.raises(NewerSchemaVersion):
        read_jobs(newer)
    for recipients in ([], [""], ["a" * 201]):
        bad = JobGroup.model_construct(**FIELDS, recipients=tuple(recipients)).model_dump_json()
        with pytest.raises(ValidationError):
            read_jobs(bad)
