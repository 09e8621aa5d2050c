"""The crieur command sends a request again after a 503 or a cut, with the same key."""

from __future__ import annotations

import httpx
import pytest

from services.notices import cli


def test_a_publish_is_sent_again_after_a_503_with_the_same_idempotency_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli.time, "sleep", lambda _: None)
    seen: list[str | None] = []

    def front_door(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("idempotency-key"))
        if len(seen) == 1:
            raise httpx.ConnectError("cut", request=request)
        if len(seen) == 2:
            return httpx.Response(503, json={"error": {"code": "bus_timeout"}})
        return httpx.Response(201, json={"id": "n0tice0001"})

    with httpx.Client(transport=httpx.MockTransport(front_door), base_url="http://t") as api:
        response = cli._send(api, "POST", "/api/v1/communes/70299/notices", json={},
                             headers={"Idempotency-Key": "k1"})
    assert response.status_code == 201
    assert seen == ["k1", "k1", "k1"]


def test_the_default_key_is_the_notice_itself() -> None:
    fields = {"category": "travaux", "title": "Route fermée", "body": "Du 2 au 4."}
    same = cli.idempotency_key("70299", dict(reversed(list(fields.items()))))
    assert cli.idempotency_key("70299", fields) == same
    assert cli.idempotency_key("70299", fields | {"title": "Route rouverte"}) != same
    assert cli.idempotency_key("70300", fields) != same
