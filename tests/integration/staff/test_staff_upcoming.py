"""A notice announced before it starts (the Marché de Noël on the 19th, published on the 7th):
sent at once, listed « À venir » on the commune's page until it starts, and staff are told
where it shows and when."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.helpers import paris_local
from tests.integration.staff.helpers import Office, shown, sign_in


async def test_a_notice_starting_later_is_announced_then_current(office: Office) -> None:
    now = office.clock()
    starts, ends = paris_local(12, "10:00", now), paris_local(12, "19:00", now)
    async with office.browser() as http:
        published = await http.post(
            f"/api/v1/communes/{office.insee}/notices", headers=office.auth,
            json={"category": "evenement", "title": "Marché de Noël",
                  "body": "Sur la place de la mairie.", "starts_at": starts, "ends_at": ends})
        assert published.status_code == 201, published.text
        notice_id = published.json()["id"]
        assert published.json()["published_at"] is not None  # sent at once

        page = shown(await http.get(f"/communes/{office.insee}"))
        current, _, coming = page.partition('id="a-venir"')
        assert "Marché de Noël" not in current
        assert "Aucun avis en cours." in current
        assert "À venir" in coming and "Marché de Noël" in coming
        assert "valable du" in coming
        feed = await http.get(f"/api/v1/communes/{office.insee}/feed.atom")
        assert "Marché de Noël" not in feed.text

        assert (await sign_in(http, f"anne-{office.insee}")).status_code == 303
        staff = shown(await http.get(f"/staff/communes/{office.insee}/notices/{notice_id}"))
        assert "Valable du " in staff and " jusqu'au " in staff
        assert "Notifications, e-mails et SMS (selon les abonnements) : envoyés le" in staff
        assert "Page de la commune, panneau lumineux et fil Atom : à partir du" in staff
        assert "« À venir »" in staff
        listing = shown(await http.get(f"/staff/communes/{office.insee}"))
        assert "en cours à partir du" in listing

        # The day comes: the notice is current, and nothing is announced any more.
        office.clock.now = (datetime.fromisoformat(published.json()["starts_at"])
                            + timedelta(minutes=1))
        page = shown(await http.get(f"/communes/{office.insee}"))
        assert 'id="a-venir"' not in page
        assert "Marché de Noël" in page and "Aucun avis en cours." not in page
