"""The front door's request log: each route's template, its secret parameters redacted.

A device's FCM token, a signed email link and the SMS webhook secret travel in paths; none
of them, nor a token in a query string, may reach a log line.
"""

from __future__ import annotations

import io

import pytest
from nats.aio.msg import Msg

from crieur.channel.http_bridge import Router, json_reply
from schemas.channels import ChannelHttpReply
from tests.integration.notices.helpers import FrontDoor, logged

pytestmark = pytest.mark.integration

TOKEN = "dGhpcy1pcy1hLXNlY3JldC10b2tlbi0xMjM0NTY3ODkw.Zz9-_x"
SECRET = "webhook-secret-4f1c2a9b7e"

# (method, path as sent, path as logged)
SECRET_PATHS = [
    ("PUT", f"/api/v1/devices/{TOKEN}", "/api/v1/devices/[redacted]"),
    ("DELETE", f"/api/v1/devices/{TOKEN}", "/api/v1/devices/[redacted]"),
    ("GET", f"/api/v1/subscriptions/email/confirm/{TOKEN}",
     "/api/v1/subscriptions/email/confirm/[redacted]"),
    ("POST", f"/api/v1/subscriptions/email/unsubscribe/{TOKEN}",
     "/api/v1/subscriptions/email/unsubscribe/[redacted]"),
    ("GET", f"/api/v1/subscriptions/email/manage/{TOKEN}",
     "/api/v1/subscriptions/email/manage/[redacted]"),
    ("POST", f"/api/v1/subscriptions/email/manage/{TOKEN}/delete",
     "/api/v1/subscriptions/email/manage/[redacted]/delete"),
    ("POST", f"/webhooks/sms/{SECRET}/inbound", "/webhooks/sms/[redacted]/inbound"),
    ("GET", f"/webhooks/sms/{SECRET}/receipts?id=12&dlr=1", "/webhooks/sms/[redacted]/receipts"),
    ("POST", "/webhooks/sms/receipts", "/webhooks/sms/receipts"),
    # No channel answers these: whatever follows the prefix may be a token.
    ("GET", f"/api/v1/subscriptions/email/confirm/{TOKEN}/more",
     "/api/v1/subscriptions/email/[redacted]"),
    ("GET", f"/webhooks/sms/{SECRET}", "/webhooks/sms/[redacted]"),
    ("GET", "/webhooks/sms", "/webhooks/sms"),
    ("GET", "/api/v1/devices/", "/api/v1/devices/[redacted]"),
    ("GET", f"/api/v1/subscriptions/email?token={TOKEN}", "/api/v1/subscriptions/email"),
]


@pytest.mark.parametrize(("method", "path", "expected"), SECRET_PATHS)
async def test_a_secret_in_a_channel_path_is_logged_redacted(
    front_door: FrontDoor, json_logs: io.StringIO, method: str, path: str, expected: str,
) -> None:
    async def channel(msg: Msg) -> None:
        await msg.respond(ChannelHttpReply(status=200, body="{}").model_dump_json().encode())

    sub = await front_door.store.nc.subscribe("channels.*.http", cb=channel)
    try:
        response = await front_door.http.request(method, path)
    finally:
        await sub.unsubscribe()
    assert response.status_code == 200
    (request,) = logged(json_logs, "http_request")
    assert (request["method"], request["path"], request["status"]) == (method, expected, 200)
    assert TOKEN not in json_logs.getvalue() and SECRET not in json_logs.getvalue()


async def test_the_front_doors_own_routes_are_logged_with_their_values(
    front_door: FrontDoor, json_logs: io.StringIO,
) -> None:
    fd = front_door
    assert (await fd.http.get(f"{fd.notices_url()}/unknown-id")).status_code == 404
    assert (await fd.http.get(f"/communes/{fd.insee}?page=2&token={TOKEN}")).status_code == 200
    assert (await fd.http.get(f"/nowhere/{TOKEN}")).status_code == 404
    assert (await fd.http.head(f"/communes/{fd.insee}")).status_code == 200
    lines = [(r["method"], r["path"]) for r in logged(json_logs, "http_request")]
    assert lines == [("GET", f"{fd.notices_url()}/unknown-id"), ("GET", f"/communes/{fd.insee}"),
                     ("GET", "[not routed]"), ("HEAD", f"/communes/{fd.insee}")]
    assert TOKEN not in json_logs.getvalue()


def test_a_channel_route_the_front_door_could_not_redact_is_refused() -> None:
    async def handler(_: object) -> ChannelHttpReply:
        return json_reply(200, {})

    with pytest.raises(ValueError, match="CHANNEL_PATHS"):
        Router().add("GET", "/api/v1/devices/{id}/topics", handler)
    Router().add("GET", "/api/v1/devices/{token}", handler)  # declared: accepted
