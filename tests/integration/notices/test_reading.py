"""Reading as feed readers and apps expect: pages, validators (ETag, Last-Modified) and 304s,
compression, one render per change however many phones poll; and two secretaries on one
notice (If-Match, 412)."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from tests.integration.notices.helpers import FrontDoor

pytestmark = pytest.mark.integration

ATOM_NS = {"a": "http://www.w3.org/2005/Atom"}
DRAFT = {"category": "information", "title": "Collecte des encombrants",
         "body": "Sortez-les la veille au soir. " * 20}


async def publish_many(fd: FrontDoor, count: int) -> list[str]:
    ids = []
    for i in range(count):
        fd.clock.now += timedelta(seconds=1)
        response = await fd.http.post(fd.notices_url(), json=DRAFT | {"title": f"Avis n° {i}"},
                                      headers=fd.auth)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def test_the_list_is_paged_with_a_link_to_the_next_page(front_door: FrontDoor) -> None:
    fd = front_door
    ids = await publish_many(fd, 7)
    seen: list[str] = []
    url: str | None = f"{fd.notices_url()}?limit=3"
    pages = 0
    while url is not None:
        response = await fd.http.get(url.removeprefix("https://crieur.example"))
        assert response.status_code == 200
        page = response.json()
        assert page["total"] == 7
        seen += [n["id"] for n in page["notices"]]
        url = page["next"]
        if url is not None:
            assert response.headers["link"] == f'<{url}>; rel="next"'
        pages += 1
    assert pages == 3
    assert seen == list(reversed(ids)), "newest first, each once"
    default = (await fd.http.get(fd.notices_url())).json()
    assert len(default["notices"]) == 7 and default["next"] is None


async def test_the_atom_feed_is_paged_as_rfc_5005_says(front_door: FrontDoor) -> None:
    fd = front_door
    await publish_many(fd, 5)
    feed = f"/api/v1/communes/{fd.insee}/feed.atom"
    first = ET.fromstring((await fd.http.get(f"{feed}?limit=2")).content)
    links = {link.get("rel"): link.get("href") for link in first.findall("a:link", ATOM_NS)}
    assert {"self", "first", "last", "next"} <= set(links) and "previous" not in links
    assert links["next"] is not None and links["next"].endswith("limit=2&offset=2")
    assert links["last"] is not None and links["last"].endswith("limit=2&offset=4")
    middle = ET.fromstring((await fd.http.get(links["next"].removeprefix(
        "https://crieur.example"))).content)
    middle_links = {link.get("rel") for link in middle.findall("a:link", ATOM_NS)}
    assert {"previous", "next"} <= middle_links
    assert len(first.findall("a:entry", ATOM_NS)) == len(middle.findall("a:entry", ATOM_NS)) == 2


@pytest.mark.parametrize("path", ["notices", "feed.atom", "notices/{id}", "notices/{id}/cap.xml",
                                  "", "..", ])
async def test_every_read_has_validators_and_answers_304_to_a_matching_if_none_match(
    front_door: FrontDoor, path: str
) -> None:
    fd = front_door
    (notice_id,) = await publish_many(fd, 1)
    url = f"/api/v1/communes/{fd.insee}/{path.format(id=notice_id)}".rstrip("/")
    if path == "..":
        url = "/api/v1/communes"
    first = await fd.http.get(url)
    assert first.status_code == 200, first.text
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = await fd.http.get(url, headers={"If-None-Match": etag})
    changed = set(again.text.split("},")) ^ set(first.text.split("},"))
    assert again.status_code == 304 and again.content == b"", (again.headers, changed)
    assert again.headers["etag"] == etag
    since = await fd.http.get(url, headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    other = await fd.http.get(url, headers={"If-None-Match": '"autre"'})
    assert other.status_code == 200
    for nonsense in ("hier", "Thu, 01 Jan 99999999999 00:00:00 GMT"):  # ignored, never a 500
        assert (await fd.http.get(url, headers={"If-Modified-Since": nonsense})).status_code == 200


async def test_an_empty_list_and_feed_still_have_validators(front_door: FrontDoor) -> None:
    fd = front_door
    for url in (fd.notices_url(), f"/api/v1/communes/{fd.insee}/feed.atom"):
        response = await fd.http.get(url)
        assert response.headers["etag"] and response.headers["last-modified"]


async def test_a_notice_etag_is_its_version_and_a_new_version_is_a_new_etag(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    (notice_id,) = await publish_many(fd, 1)
    url = f"{fd.notices_url()}/{notice_id}"
    assert (await fd.http.get(url)).headers["etag"] == '"1"'
    await fd.http.patch(url, json={"title": "Collecte reportée"}, headers=fd.auth)
    response = await fd.http.get(url, headers={"If-None-Match": '"1"'})
    assert response.status_code == 200 and response.headers["etag"] == '"2"'


async def test_a_correction_from_a_stale_read_is_412_and_from_a_fresh_one_applies(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    (notice_id,) = await publish_many(fd, 1)
    url = f"{fd.notices_url()}/{notice_id}"
    # Two secretaries read version 1.
    read_by_both = (await fd.http.get(url)).headers["etag"]
    first = await fd.http.patch(url, json={"title": "Collecte mardi"},
                                headers=fd.auth | {"If-Match": read_by_both})
    assert first.status_code == 200 and first.headers["etag"] == '"2"'
    second = await fd.http.patch(url, json={"title": "Collecte jeudi"},
                                 headers=fd.auth | {"If-Match": read_by_both})
    assert second.status_code == 412, second.text
    assert second.json()["error"]["code"] == "notice_moved_on"
    stale_withdraw = await fd.http.post(f"{url}/withdraw",
                                        headers=fd.auth | {"If-Match": read_by_both})
    assert stale_withdraw.status_code == 412
    current = await fd.http.get(url)
    assert current.json()["title"] == "Collecte mardi"
    fresh = await fd.http.post(f"{url}/withdraw",
                               headers=fd.auth | {"If-Match": current.headers["etag"]})
    assert fresh.status_code == 200
    # Without If-Match a change applies to the current version, as before.
    assert (await fd.http.patch(url, json={"title": "x"}, headers=fd.auth)).status_code == 409


async def test_answers_are_compressed_when_the_client_accepts_it(front_door: FrontDoor) -> None:
    fd = front_door
    await publish_many(fd, 10)
    for url in (fd.notices_url(), f"/api/v1/communes/{fd.insee}/feed.atom"):
        plain = await fd.http.get(url, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        # Read the raw bytes as a phone would receive them.
        async with fd.http.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as raw:
            assert raw.headers["content-encoding"] == "gzip"
            assert "Accept-Encoding" in raw.headers["vary"]
            body = b"".join([chunk async for chunk in raw.aiter_raw()])
        assert gzip.decompress(body) == plain.content
        assert len(body) < len(plain.content) / 3


async def test_many_phones_polling_one_feed_cost_one_render_per_change(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    await publish_many(fd, 20)
    feed = f"/api/v1/communes/{fd.insee}/feed.atom"
    cache = fd.app.state.context.cache
    before = cache.renders
    answers = [await fd.http.get(feed) for _ in range(50)]
    assert {a.status_code for a in answers} == {200}
    assert len({a.headers["etag"] for a in answers}) == 1
    assert cache.renders - before == 1, "rendered once for fifty polls"
    await publish_many(fd, 1)
    changed = await fd.http.get(feed, headers={"If-None-Match": answers[0].headers["etag"]})
    assert changed.status_code == 200, "a new notice is a new feed"
    assert cache.renders - before == 2


async def test_a_cached_feed_still_drops_a_notice_when_it_ends(front_door: FrontDoor) -> None:
    fd = front_door
    ends = (fd.clock.now + timedelta(minutes=30)).isoformat()
    await fd.http.post(fd.notices_url(), json=DRAFT | {"ends_at": ends}, headers=fd.auth)
    assert len((await fd.http.get(fd.notices_url())).json()["notices"]) == 1
    fd.clock.now += timedelta(hours=1)
    assert (await fd.http.get(fd.notices_url())).json()["notices"] == []


async def test_links_in_the_feed_and_cap_point_at_pages_that_exist(front_door: FrontDoor) -> None:
    fd = front_door
    (notice_id,) = await publish_many(fd, 1)
    site = "https://crieur.example"
    feed = ET.fromstring((await fd.http.get(f"/api/v1/communes/{fd.insee}/feed.atom")).content)
    hrefs = [link.get("href") or "" for link in feed.iter("{http://www.w3.org/2005/Atom}link")]
    cap = ET.fromstring((await fd.http.get(f"{fd.notices_url()}/{notice_id}/cap.xml")).content)
    hrefs += [e.text or "" for e in cap.iter("{urn:oasis:names:tc:emergency:cap:1.2}web")]
    ours = [h for h in hrefs if h.startswith(site)]
    assert len(ours) >= 5, hrefs
    for href in ours:
        response = await fd.http.get(href.removeprefix(site))
        assert response.status_code == 200, href


def test_public_url_follows_the_http_port_unless_it_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.notices.settings import NoticesSettings

    monkeypatch.setenv("CRIEUR_HTTP_PORT", "9091")
    assert NoticesSettings().public_url == "http://127.0.0.1:9091"
    monkeypatch.setenv("CRIEUR_HTTP_HOST", "0.0.0.0")
    assert NoticesSettings().public_url == "http://127.0.0.1:9091"
    monkeypatch.setenv("CRIEUR_PUBLIC_URL", "https://avis.lavoncourt.fr")
    assert NoticesSettings().public_url == "https://avis.lavoncourt.fr"


