"""Channel routes are answered by the channel over NATS request-reply, not by the front door."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from nats.aio.msg import Msg
from openapi_spec_validator import validate

from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from tests.integration.notices.helpers import FrontDoor

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


async def answer_once(fd: FrontDoor, subject: str, reply: bytes,
                      seen: list[ChannelHttpRequest]) -> Any:
    async def channel(msg: Msg) -> None:
        seen.append(ChannelHttpRequest.model_validate_json(msg.data))
        await msg.respond(reply)

    return await fd.store.nc.subscribe(subject, cb=channel)


async def test_a_webhook_reaches_its_channel_byte_for_byte_with_its_headers(
    front_door: FrontDoor,
) -> None:
    seen: list[ChannelHttpRequest] = []
    # A provider's payload: not UTF-8, and signed over its exact bytes.
    payload = b"From=%2B33612345678&Body=Caf\xe9 \xff\x00 fin\r\n"
    signature = hmac.new(b"provider-secret", payload, hashlib.sha256).hexdigest()
    picture = bytes(range(256))
    reply = ChannelHttpReply(status=200, headers={"content-type": "image/png"},
                             body_b64=base64.b64encode(picture).decode())
    sub = await answer_once(front_door, "channels.sms.http", reply.model_dump_json().encode(),
                            seen)
    try:
        response = await front_door.http.post(
            "/webhooks/sms/inbound?a=1&a=2&b=%C3%A9", content=payload,
            headers=[("Content-Type", "application/x-www-form-urlencoded"),
                     ("X-Provider-Signature", signature), ("X-Multi", "one"),
                     ("X-Multi", "two"), ("Cookie", "session=staff")])
    finally:
        await sub.unsubscribe()
    assert response.status_code == 200 and response.content == picture
    [request] = seen
    assert request.body_bytes() == payload
    assert hmac.compare_digest(
        hmac.new(b"provider-secret", request.body_bytes(), hashlib.sha256).hexdigest(),
        request.headers["x-provider-signature"])
    assert request.query == "a=1&a=2&b=%C3%A9"
    assert request.headers["x-multi"] == "one, two"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "cookie" not in request.headers and "host" not in request.headers
    assert request.path == "/webhooks/sms/inbound"


@pytest.mark.parametrize("reply", [b"not json", b'{"status": 99}', b'{"status": "ok"}',
                                   b'{"status": 200, "body_b64": "***"}',
                                   b'{"schema_version": 7, "status": 200}'])
async def test_a_malformed_reply_from_a_channel_is_502(front_door: FrontDoor,
                                                       reply: bytes) -> None:
    sub = await answer_once(front_door, "channels.email.http", reply, [])
    try:
        response = await front_door.http.get("/api/v1/subscriptions/email/abc")
    finally:
        await sub.unsubscribe()
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "channel_bad_reply"


async def test_openapi_json_is_a_valid_openapi_document(front_door: FrontDoor) -> None:
    spec = (await front_door.http.get("/openapi.json")).json()
    validate(spec)  # raises on an undefined path parameter, a duplicate operation id...
    rest = spec["paths"]["/api/v1/devices/{rest}"]["post"]["parameters"]
    assert [p["name"] for p in rest] == ["rest"]
