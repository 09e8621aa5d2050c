"""A hostile page cannot make a visitor's browser subscribe someone, nor use staff routes."""

from __future__ import annotations

import pytest

from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from tests.integration.notices.helpers import FrontDoor, channel, reply

pytestmark = pytest.mark.integration

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PLAIN = {"Content-Type": "text/plain"}
# What `<form enctype="text/plain">` on another site makes of `name='{"phone":"0612345678",
# "follows":[...],"x":"' value='"}'`: a JSON text, under a type sent without a preflight.
FORGED_JSON = ('{"phone": "06 12 34 56 78", "follows": [{"commune": "70299", '
               '"categories": ["alerte"]}], "x": "="}')


def pending(_: ChannelHttpRequest) -> ChannelHttpReply:
    return reply(202, {"status": "pending"})


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is not necessarily ours
    {"Origin": "https://evil.example"},
    {"Origin": "null"},  # a sandboxed frame
    {"Origin": "https://crieur.example.evil.example"},
])
async def test_a_form_posted_from_another_site_is_refused_in_french(
        front_door: FrontDoor, headers: dict[str, str]) -> None:
    door = front_door
    async with channel(door, "email", pending) as emails, channel(door, "sms", pending) as sms:
        for path, form in ((f"/communes/{door.insee}/abonnement/email",
                            "email=victim%40example.org&categories=alerte"),
                           (f"/communes/{door.insee}/abonnement/sms",
                            "phone=06+12+34+56+78&categories=alerte"),
                           (f"/communes/{door.insee}/abonnement/sms/confirmer",
                            "phone=06+12+34+56+78&code=123456")):
            answer = await door.http.post(path, content=form, headers=FORM | headers)
            assert answer.status_code == 403, (path, answer.text)
            assert answer.headers["content-type"] == "text/html; charset=utf-8"
            assert '<html lang="fr">' in answer.text
            assert "envoyé depuis un autre site" in answer.text
    assert emails == [] and sms == [], "nothing reaches a channel"


@pytest.mark.parametrize("headers", [
    {},  # not a browser: no page can have made it post
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},  # typed or bookmarked
    {"Origin": "http://test"},  # the host the browser addressed
    {"Origin": "https://crieur.example"},  # the public URL, behind a proxy
])
async def test_our_own_form_still_subscribes(front_door: FrontDoor,
                                             headers: dict[str, str]) -> None:
    door = front_door
    async with channel(door, "email", pending) as seen:
        answer = await door.http.post(f"/communes/{door.insee}/abonnement/email",
                                      content="email=jeanne%40example.org&categories=alerte",
                                      headers=FORM | headers)
    assert answer.status_code == 200, answer.text
    assert [r.path for r in seen] == ["/api/v1/subscriptions/email"]


@pytest.mark.parametrize(("channel_name", "path"), [
    ("sms", "/api/v1/subscriptions/sms"),
    ("sms", "/api/v1/subscriptions/sms/confirm"),
    ("email", "/api/v1/subscriptions/email"),
    ("push", "/api/v1/devices"),
])
async def test_json_routes_take_only_json(front_door: FrontDoor, channel_name: str,
                                          path: str) -> None:
    door = front_door
    async with channel(door, channel_name, pending) as seen:
        for headers in (PLAIN, FORM, {"Content-Type": "multipart/form-data; boundary=x"}, {}):
            refused = await door.http.post(path, content=FORGED_JSON, headers=headers)
            assert refused.status_code == 415, (headers, refused.text)
            error = refused.json()["error"]
            assert error["code"] == "json_required"
            assert "Content-Type: application/json" in error["message"]
        assert seen == [], "a body not declared JSON never reaches the channel"
        taken = await door.http.post(path, content=FORGED_JSON, headers={
            "Content-Type": "application/json; charset=utf-8"})
    assert taken.status_code == 202
    assert [r.path for r in seen] == [path]


async def test_the_email_pages_forms_and_one_click_unsubscribe_still_pass(
        front_door: FrontDoor) -> None:
    door = front_door
    async with channel(door, "email", pending) as seen:
        for path in ("/api/v1/subscriptions/email/unsubscribe/TOKEN",
                     "/api/v1/subscriptions/email/confirm/TOKEN"):
            # RFC 8058: the mail provider posts this, from no page of ours.
            answer = await door.http.post(path, content=b"List-Unsubscribe=One-Click",
                                          headers=FORM | {"Origin": "https://mail.example"})
            assert answer.status_code == 202, answer.text
    assert [r.path for r in seen] == ["/api/v1/subscriptions/email/unsubscribe/TOKEN",
                                      "/api/v1/subscriptions/email/confirm/TOKEN"]


async def test_the_sms_preview_is_for_staff_only(front_door: FrontDoor) -> None:
    door = front_door
    path = "/api/v1/previews/sms"
    async with channel(door, "sms", lambda r: reply(200, {"text": "x"})) as seen:
        for headers in ({}, {"Authorization": "Bearer not-a-token"},
                        {"Authorization": f"Basic {door.token}"}):
            refused = await door.http.post(path, json={"text": "x"}, headers=headers)
            assert refused.status_code == 401, (headers, refused.text)
            assert refused.json()["error"]["code"] == "unauthorized"
        assert seen == []
        allowed = await door.http.post(path, json={"text": "x"}, headers=door.auth)
    assert allowed.status_code == 200
    [request] = seen
    assert "authorization" not in request.headers, "the token stays at the front door"
