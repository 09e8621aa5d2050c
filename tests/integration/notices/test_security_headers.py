"""Headers that keep pages safe in a browser, and /docs served by the front door itself."""

from __future__ import annotations

import re

import pytest

from services.notices.app import PAGES_CSP
from services.notices.pages import COMMUNE_CSP
from tests.integration.notices.helpers import FrontDoor

pytestmark = pytest.mark.integration


async def test_pages_forbid_scripts_framing_and_sniffing(front_door: FrontDoor) -> None:
    fd = front_door
    # The commune page alone runs a script of its own, for Web Push: still no inline script,
    # nothing from elsewhere, no framing.
    for path, csp in ((f"/communes/{fd.insee}", COMMUNE_CSP),
                      (f"/communes/{fd.insee}/affiche", PAGES_CSP), ("/staff/login", PAGES_CSP),
                      (f"/communes/{fd.insee}/notices/unknown", PAGES_CSP)):
        page = await fd.http.get(path)
        assert page.headers["content-type"].startswith("text/html"), path
        assert page.headers["content-security-policy"] == csp, path
        assert "script-src" not in PAGES_CSP and "default-src 'none'" in PAGES_CSP
        assert page.headers["x-frame-options"] == "DENY", path
        assert page.headers["x-content-type-options"] == "nosniff", path
    # JSON too is never sniffed as something else, nor framed.
    listing = await fd.http.get(fd.notices_url())
    assert listing.headers["x-content-type-options"] == "nosniff"
    assert listing.headers["x-frame-options"] == "DENY"
    too_large = await fd.http.post(fd.notices_url(), content=b"x" * 1_000_001,
                                   headers=fd.auth)
    assert too_large.status_code == 413
    assert too_large.headers["x-content-type-options"] == "nosniff"


async def test_docs_load_swagger_ui_from_the_front_door_only(front_door: FrontDoor) -> None:
    page = await front_door.http.get("/docs")
    assert page.status_code == 200
    directives = dict(d.strip().split(" ", 1) for d in
                      page.headers["content-security-policy"].split(";"))
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'none'"
    assert "<script>" not in page.text, "no inline script: the CSP would block it"
    urls = re.findall(r'(?:src|href|data-openapi)="([^"]+)"', page.text)
    assert urls == ["/docs/swagger-ui.css", "/openapi.json", "/docs/swagger-ui-bundle.js",
                    "/docs/swagger-init.js"]
    for url in urls:
        answer = await front_door.http.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["x-content-type-options"] == "nosniff"
    bundle = await front_door.http.get("/docs/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in bundle.content and len(bundle.content) > 500_000
    css = await front_door.http.get("/docs/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css") and b".swagger-ui" in css.content
    assert (await front_door.http.get("/docs/../app.py")).status_code == 404
    assert (await front_door.http.get("/docs/settings.py")).status_code == 404
    # FastAPI's CDN pages are gone.
    assert (await front_door.http.get("/redoc")).status_code == 404
