"""The Web Push stand-in makes browsers in bulk for the bench and the chaos suite: each one
it can decrypt for, all kept in its keys file (so a restarted stand-in still knows them)."""

from __future__ import annotations

import json

import httpx
import pytest

from bench.baselines import webpush_loop
from crieur_dev.standins.webpush import KEYS, MAX_BATCH, WebpushStandin

pytestmark = pytest.mark.integration


async def test_browsers_made_in_bulk_are_decrypted_and_kept(standin: WebpushStandin) -> None:
    async with httpx.AsyncClient(base_url=standin.base_url, timeout=10) as http:
        made = await http.post("/_standin/subscriptions", json={"name": "lot", "count": 3})
        assert made.status_code == 201
        browsers = made.json()["subscriptions"]
        for count in (0, MAX_BATCH + 1, "3"):
            refused = await http.post("/_standin/subscriptions",
                                      json={"name": "lot", "count": count})
            assert refused.status_code == 422, count
            assert "count" in refused.json()["reason"]
    assert len({b["endpoint"] for b in browsers}) == 3
    payload = json.dumps({"notice_id": "n1", "title": "Tempête"}).encode()
    # Encrypted for each browser with its own keys, VAPID-signed, as a push service gets it.
    assert await webpush_loop(browsers, payload, concurrency=2) > 0
    got = {r["subscription"]: r for r in standin.received}
    assert {b["endpoint"].rsplit("/", 1)[1] for b in browsers} == set(got)
    assert all(r["payload"] == {"notice_id": "n1", "title": "Tempête"} for r in got.values())
    assert {r["browser"] for r in got.values()} == {"lot 0", "lot 1", "lot 2"}
    again = WebpushStandin(standin.directory, standin.base_url)
    assert set(got) <= set(again.keys)
    assert (standin.directory / KEYS).exists()


async def test_heal_says_how_many_failures_were_left(standin: WebpushStandin) -> None:
    browser = standin.subscription("Léa")
    async with httpx.AsyncClient(base_url=standin.base_url, timeout=10) as http:
        await http.post("/_standin/fail", json={"status": 503, "times": 2})
        with pytest.raises(RuntimeError, match="refused 1"):
            await webpush_loop([browser], b'{"x": 1}', concurrency=1)
        assert (await http.post("/_standin/heal")).json() == {"ok": True, "left": 1}
        assert (await http.post("/_standin/heal")).json() == {"ok": True, "left": 0}
