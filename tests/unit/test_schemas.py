"""The contracts: validation rules every service relies on, and the exported JSON Schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, ValidationError

from schemas import (
    SCHEMA_VERSION,
    Notice,
    NoticeDraft,
    NoticePatch,
    NoticePublished,
    NoticeState,
    NoticeWithdrawn,
    parse_notice_event,
)
from schemas.channels import channel_for
from schemas.export import JSON_DIR, rendered
from schemas.versions import NewerSchemaVersion


def notice(**changes: object) -> Notice:
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    data: dict[str, object] = {
        "id": "0123456789abcdef", "commune": "70299", "category": "alerte",
        "title": "Tempête", "body": "Restez chez vous.", "author": "Secrétaire",
        "version": 1, "state": "published", "created_at": now, "updated_at": now,
        "published_at": now,
    }
    return Notice.model_validate(data | changes)


def test_exported_json_schemas_are_up_to_date() -> None:
    expected = rendered()
    on_disk = {p.name: p.read_text() for p in JSON_DIR.glob("*.schema.json")}
    assert on_disk == expected, "schemas/json is stale: run `make schemas` and commit"


@pytest.mark.parametrize("insee", ["70299", "2A004", "2B033", "01001", "97411"])
def test_insee_codes_accepted(insee: str) -> None:
    assert notice(commune=insee).commune == insee


@pytest.mark.parametrize("insee", ["7029", "702999", "2C004", "2a004", "ABCDE", " 70299"])
def test_insee_codes_refused(insee: str) -> None:
    with pytest.raises(ValidationError):
        notice(commune=insee)


def test_bus_models_are_frozen_and_ignore_fields_they_do_not_know() -> None:
    n = notice()
    with pytest.raises(ValidationError):
        n.title = "autre"  # type: ignore[misc]
    assert notice(colour="red") == n


@pytest.mark.parametrize("model", [NoticeDraft, NoticePatch])
def test_what_staff_send_is_strict_down_to_links(model: type[BaseModel]) -> None:
    draft = {"category": "travaux", "title": "T", "body": "B"}
    with pytest.raises(ValidationError, match="colour"):
        model.model_validate(draft | {"colour": "red"})
    link = {"url": "https://mairie.example/a.pdf", "lable": "typo"}
    with pytest.raises(ValidationError, match="lable"):
        model.model_validate(draft | {"links": [link]})


def test_an_event_read_from_the_bus_ignores_new_fields_down_to_links() -> None:
    event = NoticePublished(occurred_at=notice().updated_at, notice=notice()).model_dump(
        mode="json")
    event["notice"]["links"] = [{"url": "https://mairie.example/a.pdf", "lang": "fr"}]
    event["trace"] = "x"
    parsed = parse_notice_event(json.dumps(event))
    assert str(parsed.notice.links[0].url) == "https://mairie.example/a.pdf"


def test_an_event_of_a_newer_breaking_version_is_refused_by_name() -> None:
    event = NoticePublished(occurred_at=notice().updated_at, notice=notice()).model_dump(
        mode="json") | {"schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(NewerSchemaVersion, match="upgraded"):
        parse_notice_event(json.dumps(event))
    # A newer version is refused even when its shape has changed beyond recognition.
    with pytest.raises(NewerSchemaVersion):
        parse_notice_event(json.dumps({"schema_version": SCHEMA_VERSION + 1, "v2": True}))


def test_a_naive_time_is_paris_time_and_serialised_with_its_offset() -> None:
    draft = NoticeDraft.model_validate({"category": "travaux", "title": "T", "body": "B",
                                        "starts_at": "2026-07-14T10:00"})
    assert draft.starts_at is not None and draft.starts_at.utcoffset() == timedelta(hours=2)
    assert '"starts_at":"2026-07-14T10:00:00+02:00"' in draft.model_dump_json()


def test_an_event_round_trips_and_a_foreign_version_is_refused() -> None:
    event = NoticePublished(occurred_at=datetime.now(UTC), notice=notice())
    parsed = parse_notice_event(event.model_dump_json())
    assert parsed == event and parsed.msg_id == "0123456789abcdef:1:published"
    wire = event.model_dump_json().replace('"schema_version":1', '"schema_version":2')
    with pytest.raises(NewerSchemaVersion):
        parse_notice_event(wire)
    with pytest.raises(ValidationError):
        parse_notice_event(b"not json")


def test_a_withdrawal_is_not_a_duplicate_of_the_publication() -> None:
    now = datetime.now(UTC)
    n = notice()
    withdrawn = NoticeWithdrawn(occurred_at=now,
                                notice=n.model_copy(update={"state": NoticeState.WITHDRAWN}))
    assert NoticePublished(occurred_at=now, notice=n).msg_id != withdrawn.msg_id


def test_current_and_expired_follow_the_window() -> None:
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    n = notice(starts_at=start, ends_at=start + timedelta(days=1))
    assert not n.is_current(start - timedelta(minutes=1))
    assert n.is_current(start)
    assert not n.is_current(start + timedelta(days=1))
    assert n.state_at(start + timedelta(days=2)) is NoticeState.EXPIRED
    assert notice(state="withdrawn").is_current(start) is False


def test_channel_routes_are_matched_by_prefix() -> None:
    assert channel_for("/api/v1/devices") == "push"
    assert channel_for("/api/v1/devices/abc") == "push"
    assert channel_for("/api/v1/subscriptions/sms/confirm") == "sms"
    assert channel_for("/webhooks/sms/ovh") == "sms"
    assert channel_for("/api/v1/devicesX") is None
    assert channel_for("/api/v1/communes") is None
