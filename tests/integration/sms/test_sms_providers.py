"""Both providers' real client code (httpx, the `ovh` SDK) against the SMS stand-in."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crieur.channel.errors import Permanent, Transient
from crieur_dev.standins.sms import FILE, SmsStandin
from services.sms.format import prepare_text
from services.sms.providers.brevo import BrevoProvider
from services.sms.providers.ovh import OvhProvider
from services.sms.sender import INVALID_NUMBER

pytestmark = pytest.mark.integration

TO = "+33612345678"


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[SmsStandin]:
    server = await SmsStandin(tmp_path / "standins").start()
    yield server
    await server.stop()


async def test_brevo_sends_records_and_fails_as_told(standin: SmsStandin, tmp_path: Path) -> None:
    provider = BrevoProvider("key-1", "Crieur", base_url=standin.url, timeout_s=1.0)
    try:
        accepted = await provider.send(TO, prepare_text("Route de Gray fermée"))
        assert accepted.message_id
        [request] = standin.sends()
        assert request["path"] == "/v3/transactionalSMS/send"
        assert request["headers"]["api-key"] == "key-1"
        assert request["body"] == {"sender": "Crieur", "recipient": "33612345678",
                                   "content": "Route de Gray fermée", "type": "transactional",
                                   "unicodeEnabled": False}
        # Recorded as it came, one JSON line each, for the demo phone page.
        lines = (tmp_path / "standins" / FILE).read_text().splitlines()
        assert json.loads(lines[0])["body"]["recipient"] == "33612345678"

        standin.fail(429, times=1, retry_after=2)
        with pytest.raises(Transient) as caught:
            await provider.send(TO, prepare_text("x"))
        assert caught.value.retry_after == 2.0
        standin.fail(503, times=1)
        with pytest.raises(Transient):
            await provider.send(TO, prepare_text("x"))
        standin.fail(200, delay_s=2.0)  # silent for longer than the client waits
        with pytest.raises(Transient, match="timeout"):
            await provider.send(TO, prepare_text("x"))
        standin.heal()
        standin.state.invalid.add("+33600000001")
        with pytest.raises(Permanent, match=INVALID_NUMBER):
            await provider.send("+33600000001", prepare_text("x"))
        assert (await provider.send(TO, prepare_text("encore"))).message_id
        # Each request is kept with what it was answered (the demo phone shows the 2xx only).
        statuses = [r["status"] for r in standin.sends()]
        assert statuses[:3] == [201, 429, 503] and statuses[4:] == [400, 201]
        assert statuses[3] in (None, 200)  # the one the client stopped waiting for
    finally:
        await provider.aclose()


async def test_ovh_sdk_signs_and_sends_a_job(standin: SmsStandin) -> None:
    provider = OvhProvider(application_key="ak", application_secret="as", consumer_key="ck",
                           service_name="sms-ab12345-1", sender="Crieur",
                           base_url=standin.url + "/1.0", timeout_s=2.0)
    try:
        accepted = await provider.send(TO, prepare_text("Coupure d’eau", False))
        assert accepted.message_id
        [job] = standin.sends()
        assert job["path"] == "/1.0/sms/sms-ab12345-1/jobs"
        assert job["headers"]["x-ovh-application"] == "ak"
        assert job["headers"]["x-ovh-signature"].startswith("$1$")
        assert job["body"]["receivers"] == [TO]
        assert job["body"]["coding"] == "8bit"
        assert job["body"]["message"] == "Coupure d’eau"
        standin.state.invalid.add("+33600000002")
        with pytest.raises(Permanent, match=INVALID_NUMBER):
            await provider.send("+33600000002", prepare_text("x"))
        standin.fail(500, times=1)
        with pytest.raises(Transient, match="ovh 500"):
            await provider.send(TO, prepare_text("x"))
    finally:
        await provider.aclose()
