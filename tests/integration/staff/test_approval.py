"""Second-staff approval against a real nats-server: nothing goes out until another approves."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.notices import scheduler
from tests.integration.staff.helpers import Office, csrf_of, shown, sign_in

pytestmark = pytest.mark.integration

ALERT = {"category": "alerte", "title": "Tempête cette nuit", "body": "Restez chez vous."}


async def test_an_alert_waits_for_another_member_then_goes_out(office: Office) -> None:
    await office.store.commune_registry.require_approval(office.insee, ("alerte",))
    _, bruno_token = await office.store.staff_registry.add(f"Bruno {office.insee}", (office.insee,))
    url = f"/api/v1/communes/{office.insee}/notices"
    async with office.browser() as api:
        held = await api.post(url, headers=office.auth, json=ALERT)
        assert held.status_code == 202, held.text
        notice = held.json()
        assert notice["state"] == "pending_approval" and notice["published_at"] is None
        # Nothing went out: not on the stream, not on the public list.
        assert office.store.get(office.insee, notice["id"]) is None
        public = await api.get(url)
        assert public.json()["total"] == 0
        # Other categories go out at once.
        info = await api.post(url, headers=office.auth, json=ALERT | {"category": "information"})
        assert info.status_code == 201

        own = await api.post(f"{url}/{notice['id']}/approve", headers=office.auth)
        assert own.status_code == 403
        assert own.json()["error"]["code"] == "own_approval"
        assert office.store.get(office.insee, notice["id"]) is None

        approved = await api.post(f"{url}/{notice['id']}/approve",
                                  headers={"Authorization": f"Bearer {bruno_token}"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "published"
        assert approved.json()["approved_by"] == f"Bruno {office.insee}"
        found = office.store.get(office.insee, notice["id"])
        assert found is not None and found[1].state.value == "published"
        assert [n.id for n in office.store.all_scheduled() if n.id == notice["id"]] == []
        assert (await api.get(url)).json()["total"] == 2

        again = await api.post(f"{url}/{notice['id']}/approve",
                               headers={"Authorization": f"Bearer {bruno_token}"})
        assert again.status_code == 409


async def test_an_approved_notice_with_a_future_time_is_scheduled(office: Office) -> None:
    await office.store.commune_registry.require_approval(office.insee, ("alerte",))
    _, bruno_token = await office.store.staff_registry.add(f"Bruno {office.insee}", (office.insee,))
    later = (office.clock.now + timedelta(hours=3)).isoformat()
    url = f"/api/v1/communes/{office.insee}/notices"
    async with office.browser() as api:
        held = await api.post(url, headers=office.auth, json=ALERT | {"publish_at": later})
        assert held.status_code == 202
        notice_id = held.json()["id"]
        approved = await api.post(f"{url}/{notice_id}/approve",
                                  headers={"Authorization": f"Bearer {bruno_token}"})
        assert approved.json()["state"] == "scheduled"
        assert office.store.get(office.insee, notice_id) is None


async def test_a_pending_notice_can_be_withdrawn_and_never_goes_out(office: Office) -> None:
    await office.store.commune_registry.require_approval(office.insee, ("alerte",))
    url = f"/api/v1/communes/{office.insee}/notices"
    async with office.browser() as api:
        notice_id = (await api.post(url, headers=office.auth, json=ALERT)).json()["id"]
        withdrawn = await api.post(f"{url}/{notice_id}/withdraw", headers=office.auth)
        assert withdrawn.status_code == 200
        assert withdrawn.json()["published_at"] is None
    assert [n.id for n in office.store.all_scheduled() if n.id == notice_id] == []


async def test_the_scheduler_leaves_a_pending_notice_alone_even_when_its_time_passed(
    office: Office,
) -> None:
    await office.store.commune_registry.require_approval(office.insee, ("alerte",))
    earlier = (office.clock.now - timedelta(minutes=5)).isoformat()
    url = f"/api/v1/communes/{office.insee}/notices"
    async with office.browser() as api:
        held = await api.post(url, headers=office.auth, json=ALERT | {"publish_at": earlier})
        assert held.status_code == 202
    notice_id = held.json()["id"]
    assert await scheduler.publish_due_notices(office.store, office.clock.now) == 0
    assert office.store.get(office.insee, notice_id) is None
    waiting = await office.store.scheduled(notice_id)
    assert waiting is not None and waiting.state.value == "pending_approval"


async def test_approval_through_the_pages(office: Office) -> None:
    await office.store.commune_registry.require_approval(office.insee, ("alerte",))
    url = f"/api/v1/communes/{office.insee}/notices"
    async with office.browser() as api:
        notice_id = (await api.post(url, headers=office.auth, json=ALERT)).json()["id"]
    page_url = f"/staff/communes/{office.insee}/notices/{notice_id}"
    async with office.browser() as anne:
        await sign_in(anne, f"anne-{office.insee}")
        page = await anne.get(page_url)
        assert "En attente d'approbation" in shown(page)
        assert "Approuver et publier" not in shown(page)
        refused = await anne.post(f"{page_url}/approve", data={"csrf": csrf_of(page.text)})
        assert refused.status_code == 403
        assert "une autre personne de la mairie doit l'approuver" in shown(refused)
    async with office.browser() as bruno:
        await sign_in(bruno, f"bruno-{office.insee}")
        listing = await bruno.get(f"/staff/communes/{office.insee}")
        assert 'data-state="pending_approval"' in listing.text
        page = await bruno.get(page_url)
        assert "Approuver et publier" in shown(page)
        done = await bruno.post(f"{page_url}/approve", data={"csrf": csrf_of(page.text)})
        assert done.status_code == 303
        assert done.headers["location"].endswith("?ok=approved-published")
        page = await bruno.get(done.headers["location"])
        assert f"approuvée par Bruno {office.insee}" in shown(page)
    found = office.store.get(office.insee, notice_id)
    assert found is not None and found[1].published_at is not None
    assert found[1].approved_by == f"Bruno {office.insee}"


async def test_correcting_a_sent_notice_into_an_alert_is_refused(office: Office) -> None:
    await office.store.commune_registry.require_approval(office.insee, ("alerte",))
    url = f"/api/v1/communes/{office.insee}/notices"
    async with office.browser() as api:
        made = await api.post(url, headers=office.auth, json=ALERT | {"category": "information"})
        assert made.status_code == 201
        notice_id = made.json()["id"]
        refused = await api.patch(f"{url}/{notice_id}", headers=office.auth,
                                  json={"category": "alerte"})
        assert refused.status_code == 422
        assert refused.json()["error"]["fields"][0]["field"] == "category"
    found = office.store.get(office.insee, notice_id)
    assert found is not None and found[1].category.value == "information"
    async with office.browser() as anne:
        await sign_in(anne, f"anne-{office.insee}")
        page_url = f"/staff/communes/{office.insee}/notices/{notice_id}"
        page = await anne.get(page_url)
        refused = await anne.post(f"{page_url}/correct", data={
            "csrf": csrf_of(page.text), "version": "1", "category": "alerte",
            "title": ALERT["title"], "body": ALERT["body"]})
        assert refused.status_code == 422
        assert "publiez-la comme un nouvel avis" in shown(refused)
