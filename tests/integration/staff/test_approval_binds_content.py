"""Approval binds to the text approved, against a real nats-server (issue #23, part 3).

An approved notice rewritten waits for a second approval again, and while it waits the
sent version is what residents and channels keep; whoever wrote any of the waiting text
cannot approve it, whoever changed only its dates can.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from schemas.notice import PARIS
from services.notices import scheduler
from tests.integration.staff.helpers import Office, csrf_of, shown, sign_in

pytestmark = pytest.mark.integration

ALERT = {"category": "alerte", "title": "Tempête cette nuit", "body": "Restez chez vous."}
REWRITTEN = {"title": "Fausse alerte", "body": "Sortez, tout va bien."}


class Members:
    """Anne (the office's token), Bruno and Claire, each with an API token."""

    def __init__(self, office: Office, bruno: str, claire: str) -> None:
        self.anne = office.auth
        self.bruno = {"Authorization": f"Bearer {bruno}"}
        self.claire = {"Authorization": f"Bearer {claire}"}


async def members(office: Office) -> Members:
    await office.store.commune_registry.require_approval(office.insee, ("alerte",))
    _, bruno = await office.store.staff_registry.add(f"Bruno {office.insee}", (office.insee,))
    _, claire = await office.store.staff_registry.add(f"Claire {office.insee}", (office.insee,))
    return Members(office, bruno, claire)


def notices_url(office: Office) -> str:
    return f"/api/v1/communes/{office.insee}/notices"


async def approved_alert(office: Office, api: httpx.AsyncClient, who: Members,
                         **extra: str) -> dict[str, object]:
    """Anne's alert, approved by Bruno."""
    held = await api.post(notices_url(office), headers=who.anne, json=ALERT | extra)
    assert held.status_code == 202, held.text
    approved = await api.post(f"{notices_url(office)}/{held.json()['id']}/approve",
                              headers=who.bruno)
    assert approved.status_code == 200, approved.text
    body: dict[str, object] = approved.json()
    assert body["approved_by"] == f"Bruno {office.insee}" and body["approved_version"] == 1
    return body


async def test_an_approved_alert_rewritten_waits_and_the_sent_text_stays(
    office: Office,
) -> None:
    who = await members(office)
    url = notices_url(office)
    async with office.browser() as api:
        alert = await approved_alert(office, api, who)
        notice_url = f"{url}/{alert['id']}"
        rewritten = await api.patch(notice_url, headers=who.anne, json=REWRITTEN)
        # Accepted, not done: the correction waits for another member's approval.
        assert rewritten.status_code == 202, rewritten.text
        pending = rewritten.json()
        assert pending["state"] == "pending_approval" and pending["version"] == 2
        assert pending["title"] == REWRITTEN["title"]
        assert pending["content_authors"] == [f"Anne {office.insee}"]
        assert rewritten.headers["ETag"] == '"2-pending_approval"'

        # What was sent stays as it was sent: on the stream (what every channel reads),
        # on the public page, in the public list.
        sent = office.store.get(office.insee, str(alert["id"]))
        assert sent is not None
        assert (sent[1].version, sent[1].title, sent[1].state.value) == (
            1, ALERT["title"], "published")
        assert sent[1].approved_by == f"Bruno {office.insee}" and sent[1].approved_version == 1
        public = (await api.get(notice_url)).json()
        assert public["title"] == ALERT["title"] and public["version"] == 1
        assert [n["title"] for n in (await api.get(url)).json()["notices"]] == [ALERT["title"]]

        # Staff see the correction waiting, beside what was sent.
        listed = await api.get(f"/api/v1/communes/{office.insee}/staff/notices",
                               params={"state": "pending_approval"}, headers=who.bruno)
        items = listed.json()["notices"]
        assert [i["notice"]["title"] for i in items] == [ALERT["title"]]
        assert items[0]["pending_correction"]["title"] == REWRITTEN["title"]

        own = await api.post(f"{notice_url}/approve", headers=who.anne)
        assert own.status_code == 403 and own.json()["error"]["code"] == "own_approval"

        approved = await api.post(f"{notice_url}/approve", headers=who.bruno)
        assert approved.status_code == 200, approved.text
        body = approved.json()
        assert body["state"] == "corrected" and body["title"] == REWRITTEN["title"]
        assert body["approved_by"] == f"Bruno {office.insee}" and body["approved_version"] == 2
        assert [v["version"] for v in body["sent_versions"]] == [1, 2]
        assert body["content_authors"] == []
    sent = office.store.get(office.insee, str(alert["id"]))
    assert sent is not None and (sent[1].version, sent[1].title) == (2, REWRITTEN["title"])
    assert await office.store.scheduled(str(alert["id"])) is None


async def test_every_writer_of_a_waiting_correction_is_kept_from_approving_it(
    office: Office,
) -> None:
    who = await members(office)
    async with office.browser() as api:
        alert = await approved_alert(office, api, who)
        notice_url = f"{notices_url(office)}/{alert['id']}"
        first = await api.patch(notice_url, headers=who.anne, json={"title": "Tempête"})
        assert first.status_code == 202
        # Bruno adds to Anne's waiting correction: now neither may approve it.
        second = await api.patch(notice_url, headers=who.bruno,
                                 json={"body": "Restez chez vous ce soir."})
        assert second.status_code == 202, second.text
        assert second.json()["version"] == 3
        assert sorted(second.json()["content_authors"]) == [
            f"Anne {office.insee}", f"Bruno {office.insee}"]
        for author in (who.anne, who.bruno):
            refused = await api.post(f"{notice_url}/approve", headers=author)
            assert refused.status_code == 403, refused.text
        sent = office.store.get(office.insee, str(alert["id"]))
        assert sent is not None and sent[1].version == 1
        approved = await api.post(f"{notice_url}/approve", headers=who.claire)
        assert approved.status_code == 200, approved.text
        assert approved.json()["title"] == "Tempête"
        assert approved.json()["body"] == "Restez chez vous ce soir."
        assert approved.json()["approved_version"] == 3


async def test_a_waiting_correction_goes_with_the_withdrawal(office: Office) -> None:
    who = await members(office)
    async with office.browser() as api:
        alert = await approved_alert(office, api, who)
        notice_url = f"{notices_url(office)}/{alert['id']}"
        assert (await api.patch(notice_url, headers=who.anne, json=REWRITTEN)).status_code == 202
        withdrawn = await api.post(f"{notice_url}/withdraw", headers=who.anne)
        assert withdrawn.status_code == 200
        assert withdrawn.json()["title"] == ALERT["title"]
        assert await office.store.scheduled(str(alert["id"])) is None
        late = await api.post(f"{notice_url}/approve", headers=who.bruno)
        assert late.status_code == 409
    sent = office.store.get(office.insee, str(alert["id"]))
    assert sent is not None and sent[1].state.value == "withdrawn"
    assert sent[1].title == ALERT["title"]


async def test_a_change_of_dates_only_to_an_approved_alert_goes_out_at_once(
    office: Office,
) -> None:
    who = await members(office)
    ends = (office.clock.now + timedelta(hours=6)).isoformat()
    async with office.browser() as api:
        alert = await approved_alert(office, api, who)
        notice_url = f"{notices_url(office)}/{alert['id']}"
        moved = await api.patch(notice_url, headers=who.anne, json={"ends_at": ends})
        assert moved.status_code == 200, moved.text
        assert moved.json()["state"] == "corrected" and moved.json()["version"] == 2
        # The text is still the one approved, at version 1.
        assert moved.json()["approved_version"] == 1
    sent = office.store.get(office.insee, str(alert["id"]))
    assert sent is not None and sent[1].version == 2


async def test_an_approved_alert_made_information_waits_too(office: Office) -> None:
    who = await members(office)
    async with office.browser() as api:
        alert = await approved_alert(office, api, who)
        notice_url = f"{notices_url(office)}/{alert['id']}"
        moved = await api.patch(notice_url, headers=who.anne, json={"category": "information"})
        assert moved.status_code == 202, moved.text
        assert moved.json()["state"] == "pending_approval"
    sent = office.store.get(office.insee, str(alert["id"]))
    assert sent is not None and sent[1].category.value == "alerte"


async def test_an_approved_scheduled_alert_rewritten_waits_and_cannot_be_sent_now(
    office: Office,
) -> None:
    who = await members(office)
    later = (office.clock.now + timedelta(hours=3)).isoformat()
    async with office.browser() as api:
        alert = await approved_alert(office, api, who, publish_at=later)
        assert alert["state"] == "scheduled"
        notice_url = f"{notices_url(office)}/{alert['id']}"
        rewritten = await api.patch(notice_url, headers=who.anne, json=REWRITTEN)
        assert rewritten.status_code == 202, rewritten.text
        assert rewritten.json()["state"] == "pending_approval"
        assert rewritten.json()["content_authors"] == [f"Anne {office.insee}"]
        now = await api.patch(notice_url, headers=who.anne, json={"publish_at": None})
        assert now.status_code == 202, now.text
        assert now.json()["state"] == "pending_approval"
        assert now.json()["published_at"] is None
        # Nothing went out, and the scheduler does not send it either.
        assert office.store.get(office.insee, str(alert["id"])) is None
        await scheduler.publish_due_notices(office.store, office.clock.now)
        assert office.store.get(office.insee, str(alert["id"])) is None
        assert (await api.post(f"{notice_url}/approve", headers=who.anne)).status_code == 403
        approved = await api.post(f"{notice_url}/approve", headers=who.bruno)
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "published"
        assert approved.json()["title"] == REWRITTEN["title"]
        assert approved.json()["approved_version"] == 3
    sent = office.store.get(office.insee, str(alert["id"]))
    assert sent is not None and sent[1].title == REWRITTEN["title"]


async def test_approval_follows_who_wrote_the_text_not_who_wrote_last(office: Office) -> None:
    who = await members(office)
    later = (office.clock.now + timedelta(hours=3)).isoformat()
    url = notices_url(office)
    async with office.browser() as api:
        held = await api.post(url, headers=who.anne, json=ALERT)
        notice_url = f"{url}/{held.json()['id']}"
        moved = await api.patch(notice_url, headers=who.bruno, json={"publish_at": later})
        assert moved.status_code == 202, moved.text
        assert moved.json()["author"] == f"Bruno {office.insee}"
        assert moved.json()["content_authors"] == [f"Anne {office.insee}"]
        # Anne wrote the text: she still may not approve it; Bruno, who moved its date, may.
        own = await api.post(f"{notice_url}/approve", headers=who.anne)
        assert own.status_code == 403, own.text
        approved = await api.post(f"{notice_url}/approve", headers=who.bruno)
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "scheduled"
        assert approved.json()["approved_by"] == f"Bruno {office.insee}"


# -- the same through the staff pages ---------------------------------------------------------

def form_of(notice: dict[str, object], version: object, **changes: str) -> dict[str, str]:
    fields = {"version": str(version), "category": str(notice["category"]),
              "title": str(notice["title"]), "body": str(notice["body"])}
    return fields | changes


async def test_a_rewrite_through_the_pages_waits_for_another_member(office: Office) -> None:
    who = await members(office)
    async with office.browser() as api:
        alert = await approved_alert(office, api, who)
    page_url = f"/staff/communes/{office.insee}/notices/{alert['id']}"
    async with office.browser() as anne:
        await sign_in(anne, f"anne-{office.insee}")
        page = await anne.get(page_url)
        rewrite = {"csrf": csrf_of(page.text), **form_of(alert, 1, **REWRITTEN)}
        # Sent already: the correction is shown first, saying it waits for approval.
        asked = await anne.post(f"{page_url}/correct", data=rewrite)
        assert asked.status_code == 200, asked.text
        assert "l'approbation d'une deuxième personne" in shown(asked)
        assert "Envoyer pour approbation" in shown(asked)
        done = await anne.post(f"{page_url}/correct", data=rewrite | {"confirm": "1"})
        assert done.status_code == 303, done.text
        assert done.headers["location"].endswith("?ok=correction-pending")
        page = await anne.get(done.headers["location"])
        assert "La correction attend l'approbation" in shown(page)
        # The page shows what was sent, and the correction waiting.
        assert ALERT["title"] in shown(page) and REWRITTEN["title"] in shown(page)
        assert "Approuver et publier" not in shown(page)
        refused = await anne.post(f"{page_url}/approve", data={"csrf": csrf_of(page.text)})
        assert refused.status_code == 403
    sent = office.store.get(office.insee, str(alert["id"]))
    assert sent is not None and sent[1].title == ALERT["title"]
    async with office.browser() as bruno:
        await sign_in(bruno, f"bruno-{office.insee}")
        listing = await bruno.get(f"/staff/communes/{office.insee}")
        assert f'data-notice-id="{alert["id"]}" data-state="pending_approval"' in listing.text
        page = await bruno.get(page_url)
        assert "Approuver et publier" in shown(page)
        done = await bruno.post(f"{page_url}/approve", data={"csrf": csrf_of(page.text)})
        assert done.status_code == 303
        assert done.headers["location"].endswith("?ok=approved-corrected")
        page = await bruno.get(done.headers["location"])
        assert f"version 2 approuvée par Bruno {office.insee}" in shown(page)
    sent = office.store.get(office.insee, str(alert["id"]))
    assert sent is not None and (sent[1].version, sent[1].title) == (2, REWRITTEN["title"])


async def test_a_scheduled_alert_rewritten_through_the_pages_waits_again(
    office: Office,
) -> None:
    who = await members(office)
    later = office.clock.now + timedelta(hours=3)
    async with office.browser() as api:
        alert = await approved_alert(office, api, who, publish_at=later.isoformat())
    page_url = f"/staff/communes/{office.insee}/notices/{alert['id']}"
    async with office.browser() as anne:
        await sign_in(anne, f"anne-{office.insee}")
        page = await anne.get(page_url)
        done = await anne.post(f"{page_url}/correct", data={
            "csrf": csrf_of(page.text), **form_of(alert, 1, **REWRITTEN)})
        assert done.status_code == 303, done.text
        assert done.headers["location"].endswith("?ok=pending_approval")
    waiting = await office.store.scheduled(str(alert["id"]))
    assert waiting is not None and waiting.state.value == "pending_approval"
    # Its time comes: the scheduler leaves it waiting (other tests' notices may go out).
    await scheduler.publish_due_notices(office.store, later + timedelta(minutes=1))
    assert office.store.get(office.insee, str(alert["id"])) is None
    assert await office.store.scheduled(str(alert["id"])) == waiting


async def test_a_date_changed_through_the_pages_leaves_the_text_to_its_author(
    office: Office,
) -> None:
    who = await members(office)
    async with office.browser() as api:
        held = await api.post(notices_url(office), headers=who.anne, json=ALERT)
        assert held.status_code == 202
    notice = held.json()
    page_url = f"/staff/communes/{office.insee}/notices/{notice['id']}"
    later = (office.clock.now + timedelta(hours=3)).astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")
    async with office.browser() as bruno:
        await sign_in(bruno, f"bruno-{office.insee}")
        page = await bruno.get(page_url)
        moved = await bruno.post(f"{page_url}/correct", data={
            "csrf": csrf_of(page.text), **form_of(notice, 1, publish_at=later)})
        assert moved.status_code == 303, moved.text
        waiting = await office.store.scheduled(notice["id"])
        assert waiting is not None and waiting.author == f"Bruno {office.insee}"
        assert waiting.publish_at is not None
    async with office.browser() as anne:
        await sign_in(anne, f"anne-{office.insee}")
        page = await anne.get(page_url)
        assert "Approuver et publier" not in shown(page)
        refused = await anne.post(f"{page_url}/approve", data={"csrf": csrf_of(page.text)})
        assert refused.status_code == 403
    async with office.browser() as bruno:
        await sign_in(bruno, f"bruno-{office.insee}")
        page = await bruno.get(page_url)
        assert "Approuver et publier" in shown(page)
        done = await bruno.post(f"{page_url}/approve", data={"csrf": csrf_of(page.text)})
        assert done.headers["location"].endswith("?ok=approved-scheduled")
