"""Channel routes are answered by the channel over NATS request-reply, not by the front door."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg

from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from tests.integration.notices.conftest import FrontDoor

pytestmark = pytest.mark.integration


async def test_a_device_registration_is_answered_by_the_push_channel(front_door: FrontDoor) -> None:
    seen: list[ChannelHttpRequest] = []

    async def push_channel(msg: Msg) -> None:
        request = ChannelHttpRequest.model_validate_json(msg.data)
        seen.append(request)
        reply = ChannelHttpReply(status=201, headers={"content-type": "application/json"},
                                 body='{"registered": true}')
        await msg.respond(reply.model_dump_json().encode())

    sub = await front_door.store.nc.subscribe("channels.push.http", cb=push_channel)
    try:
        response = await front_door.http.post(
            "/api/v1/devices?lang=fr", json={"token": "abc", "communes": ["70299"]},
            headers={"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer secret"})
    finally:
        await sub.unsubscribe()
    assert response.status_code == 201
    assert response.json() == {"registered": True}
    [request] = seen
    assert (request.method, request.path, request.query) == ("POST", "/api/v1/devices", "lang=fr")
    assert '"token":"abc"' in request.body.replace(" ", "")
    assert request.headers["x-forwarded-for"] == "203.0.113.9"
    assert "authorization" not in request.headers, "staff credentials never leave the front door"


async def test_a_channel_that_is_not_running_gives_503(front_door: FrontDoor) -> None:
    response = await front_door.http.post("/api/v1/subscriptions/sms", json={"phone": "0612"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "channel_unavailable"
    assert "sms" in response.json()["error"]["message"]


async def test_openapi_describes_the_routes(front_door: FrontDoor) -> None:
    spec = (await front_door.http.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in ("/api/v1/communes/{insee}/notices",
                 "/api/v1/communes/{insee}/notices/{notice_id}",
                 "/api/v1/communes/{insee}/notices/{notice_id}/withdraw",
                 "/api/v1/communes/{insee}/feed.atom",
                 "/api/v1/communes/{insee}/notices/{notice_id}/cap.xml",
                 "/api/v1/devices"):
        assert path in paths, path
    assert "post" in paths["/api/v1/communes/{insee}/notices"]
    assert "patch" in paths["/api/v1/communes/{insee}/notices/{notice_id}"]
