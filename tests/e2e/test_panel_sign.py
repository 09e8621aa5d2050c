"""The web sign in a real headless Chromium, and a sign killed and restarted mid-village."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from crieur.nats_server import free_port
from tests.e2e.helpers import Village, chromium_browser, eventually, publish, withdraw
from tests.helpers import repo_root


@pytest.mark.e2e
@pytest.mark.browser
def test_the_web_sign_shows_a_notice_and_drops_it_when_withdrawn(
    village: Village, chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with chromium_browser(chromium) as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 600})
        page.goto(village.panel + "/")
        assert page.locator("html").get_attribute("lang") == "fr"
        expect(page.locator("#empty")).to_be_visible(timeout=20_000)
        # An alert: the village runs with the default blank hours (23:00-06:00), when
        # only alerts show, and this test must pass at any hour.
        notice_id = publish(village, "Orage : arbres tombés route de Gray", "alerte")
        item = page.locator(f'#notices li[data-notice-id="{notice_id}"]')
        expect(item).to_be_visible(timeout=20_000)
        expect(item).to_contain_text("Orage : arbres tombés route de Gray")
        expect(item).to_contain_text("Alerte")
        expect(page.locator("#empty")).to_be_hidden()
        # The LED matrix got frames pushed over SSE (not only the blank one of the page).
        first = page.locator("#frame").get_attribute("src")
        eventually(lambda: page.locator("#frame").get_attribute("src") != first,
                   "a new frame on the web sign", within=20)
        page.screenshot(path=str(tmp_path / "sign.png"))
        assert (tmp_path / "sign.png").stat().st_size > 0

        withdraw(village, notice_id)
        expect(item).to_have_count(0, timeout=20_000)
        expect(page.locator("#empty")).to_be_visible()
        page.screenshot(path=str(tmp_path / "sign-after.png"))


def start_panel(village: Village, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
    env |= {"CRIEUR_NATS_URL": village.nats_url, "CRIEUR_PANEL_HTTP_PORT": str(port),
            "CRIEUR_DATA_DIR": str(data_dir), "CRIEUR_LOG_FORMAT": "json",
            # Never dark, so the test does not depend on the hour it runs at.
            "CRIEUR_PANEL_BLANK_HOURS": ""}
    log = (data_dir / "panel.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "services.panel"], cwd=repo_root(), env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def playlist(url: str) -> dict[str, Any] | None:
    try:
        reply = httpx.get(url + "/playlist", timeout=2)
    except httpx.HTTPError:
        return None
    return reply.json() if reply.status_code == 200 else None


@pytest.mark.e2e
def test_a_killed_sign_comes_back_showing_exactly_what_is_current(
    village: Village, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    panel = start_panel(village, port, tmp_path)
    try:
        first = eventually(lambda: (p := playlist(url)) and p["synced"] and p, "sign synced")
        before = {n["id"] for n in first["notices"]}

        panel.send_signal(signal.SIGKILL)
        panel.wait(30)
        a = publish(village, "Avis A : publié puis retiré pendant la panne")
        b = publish(village, "Avis B : publié pendant la panne")
        withdraw(village, a)

        panel = start_panel(village, port, tmp_path)
        current = eventually(lambda: (p := playlist(url)) and p["synced"] and p,
                             "the restarted sign has replayed the stream")
        ids = [n["id"] for n in current["notices"]]
        # Exactly what was there before, plus B; A came and went while the sign was dead.
        assert sorted(ids) == sorted(before | {b})
        assert a not in ids
        [shown] = [n for n in current["notices"] if n["id"] == b]
        assert shown["title"] == "Avis B : publié pendant la panne"
        assert shown["version"] == 1 and shown["alert"] is False
    finally:
        if panel.poll() is None:
            panel.terminate()
            panel.wait(30)
