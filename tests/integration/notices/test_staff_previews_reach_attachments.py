"""The data staff pages use: previews asked of the channels, reach from DELIVERIES, attachments.

A real nats-server; the channels are played here by plain NATS responders (the channels'
own answers are tested in their folders and in tests/e2e/test_staff_previews_village.py).
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from nats.aio.msg import Msg

from crieur.bus import ensure_streams
from schemas import subjects
from schemas.deliveries import Channel, DeliveryOutcome, DeliveryReport
from schemas.previews import PreviewRequest, SmsPreview
from schemas.streams import DEADLETTERS, DELIVERIES
from tests.helpers import eventually
from tests.integration.notices.helpers import FrontDoor

pytestmark = pytest.mark.integration

DRAFT = {"category": "alerte", "title": "Tempête : restez chez vous",
         "body": "Vents à 120 km/h attendus cette nuit."}
# A real 1 × 1 image: images are decoded (and reduced) when uploaded.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGM4IScHAAK2AQU0pnWqAAAAAElFTkSuQmCC")
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def previews_url(fd: FrontDoor) -> str:
    return f"/api/v1/communes/{fd.insee}/previews"


# -- previews ---------------------------------------------------------------------------------

async def test_without_channels_every_preview_says_unavailable_and_why(
        front_door: FrontDoor) -> None:
    fd = front_door
    answer = await fd.http.post(previews_url(fd), headers=fd.auth, json=DRAFT)
    assert answer.status_code == 200, answer.text
    channels = answer.json()["channels"]
    assert set(channels) == {"push", "sms", "webpush", "panel", "email"}
    for name, preview in channels.items():
        assert preview["available"] is False, name
        assert preview["reason"], name
    assert "panneau" in channels["panel"]["reason"]


async def test_a_channel_answers_from_the_notice_the_draft_would_become(
        front_door: FrontDoor) -> None:
    fd = front_door
    asked: list[PreviewRequest] = []

    async def sms(msg: Msg) -> None:
        request = PreviewRequest.model_validate_json(msg.data)
        asked.append(request)
        await msg.respond(SmsPreview(
            text=request.notice.title, encoding="UCS-2", parts=2, long_characters=["ê"],
            reach=3, parts_to_pay=6).model_dump_json().encode()[:-1]
            + b', "added_by_a_newer_channel": 1}')

    sub = await fd.store.nc.subscribe(subjects.channel_preview("sms", fd.insee), cb=sms)
    try:
        answer = await fd.http.post(previews_url(fd), headers=fd.auth, json=DRAFT)
    finally:
        await sub.unsubscribe()
    assert answer.status_code == 200, answer.text
    sms_preview = answer.json()["channels"]["sms"]
    assert sms_preview == {"available": True, "text": DRAFT["title"], "encoding": "UCS-2",
                           "parts": 2, "long_characters": ["ê"], "cut": False, "reach": 3,
                           "parts_to_pay": 6, "category_carried": True}
    [request] = asked
    assert request.commune == fd.insee and request.commune_name == "Lavoncourt"
    assert request.notice.body == DRAFT["body"] and request.notice.category == "alerte"
    # Nothing was stored: the commune still has no notice.
    listed = (await fd.http.get(f"/api/v1/communes/{fd.insee}/notices")).json()
    assert listed["total"] == 0


async def test_a_silent_or_garbled_channel_is_unavailable_and_the_others_still_answer(
        front_door: FrontDoor) -> None:
    fd = front_door

    async def silent(msg: Msg) -> None:
        await asyncio.sleep(3)

    async def garbled(msg: Msg) -> None:
        await msg.respond(b"not json at all")

    async def email(msg: Msg) -> None:
        await msg.respond(b'{"subject": "Alerte : x", "text": "t", "html": "<p>t</p>", '
                          b'"reach": 2}')

    nc = fd.store.nc
    subs = [await nc.subscribe(subjects.channel_preview("push", fd.insee), cb=silent),
            await nc.subscribe(subjects.channel_preview("sms", fd.insee), cb=garbled),
            await nc.subscribe(subjects.channel_preview("email", fd.insee), cb=email)]
    try:
        answer = await fd.http.post(previews_url(fd), headers=fd.auth, json=DRAFT)
    finally:
        for sub in subs:
            await sub.unsubscribe()
    channels = answer.json()["channels"]
    assert channels["push"] == {"available": False, "reason": "Ce canal n'a pas répondu à temps."}
    assert channels["sms"]["available"] is False and "illisible" in channels["sms"]["reason"]
    assert channels["email"]["available"] is True and channels["email"]["reach"] == 2


@pytest.mark.parametrize(("body", "field"), [
    ({**DRAFT, "title": ""}, "title"),
    ({**DRAFT, "category": "fete"}, "category"),
    ({**DRAFT, "ends_at": "2001-01-01T10:00"}, "ends_at"),
    ({**DRAFT, "colour": "red"}, "colour"),
    ({**DRAFT, "attachments": ["0123456789abcdef"]}, "attachments.0"),
])
async def test_a_draft_is_checked_as_publishing_checks_it(
        front_door: FrontDoor, body: dict[str, Any], field: str) -> None:
    fd = front_door
    answer = await fd.http.post(previews_url(fd), headers=fd.auth, json=body)
    assert answer.status_code == 422, answer.text
    assert field in [f["field"] for f in answer.json()["error"]["fields"]]


async def test_previews_are_for_staff_of_the_commune(front_door: FrontDoor) -> None:
    fd = front_door
    assert (await fd.http.post(previews_url(fd), json=DRAFT)).status_code == 401
    other = "2A004"
    await fd.store.commune_registry.add(other, "Ajaccio")
    assert (await fd.http.post(f"/api/v1/communes/{other}/previews", headers=fd.auth,
                               json=DRAFT)).status_code == 403


# -- reach ------------------------------------------------------------------------------------

async def report(fd: FrontDoor, channel: Channel, notice_id: str, outcome: DeliveryOutcome,
                 target: str = "", duration_s: float | None = None) -> None:
    data = DeliveryReport(channel=channel, commune=fd.insee, notice_id=notice_id, version=1,
                          outcome=outcome, at=datetime.now(UTC), target=target,
                          duration_s=duration_s)
    await fd.store.js.publish(subjects.delivery(channel, fd.insee),
                              data.model_dump_json().encode())


async def test_reach_counts_what_each_channel_reported(front_door: FrontDoor) -> None:
    fd = front_door
    await ensure_streams(fd.store.js, (DELIVERIES, DEADLETTERS))
    notice = (await fd.http.post(fd.notices_url(), headers=fd.auth, json=DRAFT)).json()
    url = f"/api/v1/communes/{fd.insee}/notices/{notice['id']}/reach"
    empty = (await fd.http.get(url, headers=fd.auth)).json()
    assert empty["email"]["sent"] == 0 and empty["panel"]["shown_seconds"] == 0

    topic = f"crieur-{fd.insee}-alerte"
    await report(fd, Channel.PUSH, notice["id"], DeliveryOutcome.SENT, target=topic)
    for _ in range(3):
        await report(fd, Channel.EMAIL, notice["id"], DeliveryOutcome.SENT, target="abc")
    await report(fd, Channel.EMAIL, notice["id"], DeliveryOutcome.BOUNCED, target="def")
    await report(fd, Channel.SMS, notice["id"], DeliveryOutcome.SENT, target="ghi")
    await report(fd, Channel.SMS, notice["id"], DeliveryOutcome.DELIVERED, target="ghi")
    await report(fd, Channel.PANEL, notice["id"], DeliveryOutcome.SHOWN, "panneau", 12.5)
    await report(fd, Channel.PANEL, notice["id"], DeliveryOutcome.SHOWN, "panneau", 7.5)
    # Another notice's reports and a report this build cannot read change nothing here.
    await report(fd, Channel.EMAIL, "someothernotice", DeliveryOutcome.SENT)
    await fd.store.js.publish(subjects.delivery("email", fd.insee), b"{not json")

    async def counted() -> bool:
        return (await fd.http.get(url, headers=fd.auth)).json()["panel"]["shown"] == 2

    await eventually(counted, "the reports counted")
    reach = (await fd.http.get(url, headers=fd.auth)).json()
    assert reach["push"]["sent"] == 1 and reach["push"]["topics"] == {topic: 1}
    assert (reach["email"]["sent"], reach["email"]["bounced"]) == (3, 1)
    # Three messages to one person (a notice and its corrections), a bounce reached no one.
    assert reach["email"]["people"] == 1
    assert (reach["sms"]["sent"], reach["sms"]["delivered"], reach["sms"]["people"]) == (1, 1, 1)
    assert reach["panel"]["shown_seconds"] == 20.0 and reach["panel"]["signs"] == ["panneau"]
    assert reach["complete"] is True

    counter = fd.app.state.reach
    page = counter.reach_of_many(fd.insee, [notice["id"], "neverreported"])
    assert page[notice["id"]].email.sent == 3 and page["neverreported"].email.sent == 0
    assert counter.skipped >= 1


async def test_reach_is_for_staff_and_known_notices(front_door: FrontDoor) -> None:
    fd = front_door
    notice = (await fd.http.post(fd.notices_url(), headers=fd.auth, json=DRAFT)).json()
    url = f"/api/v1/communes/{fd.insee}/notices/{notice['id']}/reach"
    assert (await fd.http.get(url)).status_code == 401
    missing = f"/api/v1/communes/{fd.insee}/notices/0000000000000000/reach"
    assert (await fd.http.get(missing, headers=fd.auth)).status_code == 404


# -- attachments ------------------------------------------------------------------------------

def upload_url(fd: FrontDoor) -> str:
    return f"/api/v1/communes/{fd.insee}/attachments"


async def test_an_uploaded_pdf_goes_with_a_notice_and_residents_download_it(
        front_door: FrontDoor) -> None:
    fd = front_door
    answer = await fd.http.post(upload_url(fd), headers=fd.auth,
                                files={"file": ("Arrêté n°12.pdf", PDF, "text/plain")})
    assert answer.status_code == 201, answer.text
    stored = answer.json()
    # The type comes from the content, not from what the client declared.
    assert stored["content_type"] == "application/pdf" and stored["size"] == len(PDF)
    assert stored["filename"] == "Arrêté n°12.pdf"
    public = f"/communes/{fd.insee}/attachments/{stored['id']}"
    assert stored["url"] == "https://crieur.example" + public

    notice = (await fd.http.post(fd.notices_url(), headers=fd.auth,
                                 json={**DRAFT, "attachments": [stored["id"]]})).json()
    [attachment] = notice["attachments"]
    assert attachment == {"name": "Arrêté n°12.pdf", "url": stored["url"],
                          "media_type": "application/pdf", "size": len(PDF),
                          "id": stored["id"]}

    download = await fd.http.get(public)
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    disposition = download.headers["content-disposition"]
    assert "filename*=UTF-8''Arr%C3%AAt%C3%A9%20n%C2%B012.pdf" in disposition
    page = await fd.http.get(f"/communes/{fd.insee}/notices/{notice['id']}")
    assert stored["url"] in page.text and "Arrêté n°12.pdf" in page.text


async def test_an_uploaded_photo_shows_in_the_notice_on_the_public_page(
        front_door: FrontDoor) -> None:
    fd = front_door
    photo = (await fd.http.post(upload_url(fd), headers=fd.auth,
                                files={"file": ("Déviation.png", PNG, "image/png")})).json()
    decree = (await fd.http.post(upload_url(fd), headers=fd.auth,
                                 files={"file": ("Arrêté.pdf", PDF, "application/pdf")})).json()
    notice = (await fd.http.post(fd.notices_url(), headers=fd.auth, json={
        **DRAFT, "attachments": [decree["id"], photo["id"]]})).json()
    page = await fd.http.get(f"/communes/{fd.insee}/notices/{notice['id']}")
    path = f"/communes/{fd.insee}/attachments/{photo['id']}"
    # Shown on the page (its own origin, as the page's CSP allows), with a text for those
    # who cannot see it; the PDF stays a document to download, not an image.
    assert (f'<img src="{path}" alt="Photo jointe à l’avis : {DRAFT["title"]}">'
            in page.text)
    assert "img-src 'self'" in page.headers["content-security-policy"]
    assert f'<img src="/communes/{fd.insee}/attachments/{decree["id"]}"' not in page.text
    assert "Arrêté.pdf" in page.text
    shown = await fd.http.get(path)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"


async def test_a_raw_image_upload_takes_its_name_from_the_query(front_door: FrontDoor) -> None:
    fd = front_door
    answer = await fd.http.post(upload_url(fd), params={"filename": "../../plan.exe"},
                                headers=fd.auth | {"Content-Type": "application/octet-stream"},
                                content=PNG)
    assert answer.status_code == 201, answer.text
    assert answer.json()["content_type"] == "image/png"
    assert answer.json()["filename"] == "plan.exe.png"
    download = await fd.http.get(f"/communes/{fd.insee}/attachments/{answer.json()['id']}")
    assert download.headers["content-type"] == "image/png"
    assert download.headers["x-content-type-options"] == "nosniff"


async def test_what_is_not_an_image_or_a_pdf_or_is_too_big_is_refused(
        front_door: FrontDoor) -> None:
    fd = front_door
    html = await fd.http.post(upload_url(fd), headers=fd.auth,
                              files={"file": ("photo.png", b"<html><script>x</script>",
                                              "image/png")})
    assert html.status_code == 415 and html.json()["error"]["code"] == "attachment_type"
    empty = await fd.http.post(upload_url(fd), headers=fd.auth, content=b"")
    assert empty.status_code == 422
    limit = fd.app.state.context.settings.attachment_max_bytes
    big = await fd.http.post(upload_url(fd), headers=fd.auth, content=PNG + b"\0" * limit)
    assert big.status_code == 413 and big.json()["error"]["code"] == "attachment_too_large"
    # Larger than a JSON body may be, within the attachment limit: taken.
    json_limit = fd.app.state.context.settings.max_body_bytes
    fine = await fd.http.post(upload_url(fd), headers=fd.auth,
                              content=PDF + b"\0" * (json_limit + 10))
    assert fine.status_code == 201, fine.text
    assert (await fd.http.post(upload_url(fd), content=PDF)).status_code == 401


async def test_an_attachment_belongs_to_its_commune(front_door: FrontDoor) -> None:
    fd = front_door
    stored = (await fd.http.post(upload_url(fd), headers=fd.auth, content=PNG)).json()
    other = "2B033"
    await fd.store.commune_registry.add(other, "Bastia")
    assert (await fd.http.get(f"/communes/{other}/attachments/{stored['id']}")).status_code == 404
    assert (await fd.http.get(f"/communes/{fd.insee}/attachments/nope")).status_code == 404
    _, token = await fd.store.staff_registry.add("Mairie de Bastia", (other,))
    bastia = {"Authorization": f"Bearer {token}"}
    used = await fd.http.post(f"/api/v1/communes/{other}/notices", headers=bastia,
                              json={**DRAFT, "attachments": [stored["id"]]})
    assert used.status_code == 422 and used.json()["error"]["fields"][0]["field"] == (
        "attachments.0")


async def test_a_correction_may_add_an_uploaded_attachment(front_door: FrontDoor) -> None:
    fd = front_door
    notice = (await fd.http.post(fd.notices_url(), headers=fd.auth, json=DRAFT)).json()
    stored = (await fd.http.post(upload_url(fd), headers=fd.auth, content=PNG,
                                 params={"filename": "carte.png"})).json()
    corrected = await fd.http.patch(f"{fd.notices_url()}/{notice['id']}", headers=fd.auth,
                                    json={"attachments": [stored["id"]]})
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["version"] == 2
    assert [a["id"] for a in corrected.json()["attachments"]] == [stored["id"]]
    unknown = await fd.http.patch(f"{fd.notices_url()}/{notice['id']}", headers=fd.auth,
                                  json={"attachments": ["ffffffffffffffff"]})
    assert unknown.status_code == 422
