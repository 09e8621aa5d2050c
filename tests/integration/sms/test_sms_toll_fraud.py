"""Issue #25, SMS toll fraud: who may be sent a code, how many codes an hour, from whom.

Residents' requests go through the SMS channel's HTTP bridge (as the front door forwards
them), against the session's nats-server and the SMS stand-in.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from crieur_dev.standins.sms import SmsStandin
from schemas.channels import ChannelHttpRequest
from services.sms.service import SmsService
from tests.integration.sms.helpers import (
    Clock,
    Mairie,
    StartSms,
    call,
    random_insee,
    wait_for,
)

SUBSCRIBE = "/api/v1/subscriptions/sms"

# Valid mobile numbers of the countries the codes went to (phonenumbers' examples).
FOREIGN = ["+2348021234567", "+79123456789", "+639051234567", "+261321234567",
           "+67077212345", "+12015550123"]


async def commune_follows(nc: Client) -> list[dict[str, Any]]:
    commune = random_insee()
    await Mairie(nc).register(commune, "Lavoncourt")
    return [{"commune": commune, "categories": ["alerte"]}]


def recipients(standin: SmsStandin) -> list[str]:
    return [send["body"]["recipient"] for send in standin.sends()]


async def ask(service: SmsService, phone: str, follows: list[dict[str, Any]],
              client_ip: str) -> tuple[int, Any]:
    """A subscription answered by this very instance (two instances share one subject)."""
    assert service.web is not None
    reply = await service.web.router().dispatch(ChannelHttpRequest(
        method="POST", path=SUBSCRIBE, headers={"content-type": "application/json"},
        body=json.dumps({"phone": phone, "follows": follows}), client_ip=client_ip))
    return reply.status, json.loads(reply.body)


def refusals(scope: str) -> float:
    return REGISTRY.get_sample_value("crieur_sms_code_budget_refused_total",
                                     {"scope": scope}) or 0.0


async def test_a_foreign_number_is_refused_in_french_and_gets_no_sms(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    await start_sms()
    follows = await commune_follows(nc)
    for i, phone in enumerate(FOREIGN):
        status, body = await call(nc, "POST", SUBSCRIBE, {"phone": phone, "follows": follows},
                                  client_ip=f"192.0.2.{10 + i}")
        assert status == 422, phone
        [field] = body["error"]["fields"]
        assert field["field"] == "phone"
        assert field["message"] == ("nous n’envoyons de SMS qu’aux portables de France "
                                    "(métropole et outre-mer)")
    # Overseas departments are France: Guadeloupe, La Réunion, then a metropolitan mobile.
    for phone in ("+590690123456", "+262692123456", "06 12 34 56 78"):
        status, _ = await call(nc, "POST", SUBSCRIBE, {"phone": phone, "follows": follows})
        assert status == 202, phone
    await wait_for(lambda: len(standin.sends()) == 3, what="three code SMS")
    await asyncio.sleep(0.3)
    assert sorted(recipients(standin)) == ["262692123456", "33612345678", "590690123456"]


async def test_a_region_added_to_the_setting_is_served(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    await start_sms(sms_countries="FR,NC")
    follows = await commune_follows(nc)
    status, _ = await call(nc, "POST", SUBSCRIBE, {"phone": "+687751234", "follows": follows})
    assert status == 202
    await wait_for(lambda: recipients(standin) == ["687751234"], what="the code to Nouméa")
    # Only what is listed: Guadeloupe is no longer in it.
    status, body = await call(nc, "POST", SUBSCRIBE,
                              {"phone": "+590690123456", "follows": follows})
    assert status == 422 and body["error"]["fields"][0]["field"] == "phone"


async def test_the_code_budget_is_shared_by_every_instance_and_kept_across_restarts(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    clock = Clock(datetime.now(UTC))
    # One service, two processes: the same kit name on the same NATS.
    name = "sms-budget-" + random_insee()
    one = await start_sms(clock=clock, name=name, sms_code_budget="4,100")
    two = await start_sms(clock=clock, name=name, sms_code_budget="4,100")
    follows = await commune_follows(nc)
    phones = iter(f"+3366{i}{n:06d}" for n in range(100) for i in range(10))
    # Two each: four codes in all, the budget.
    answers = [await ask(service, next(phones), follows, f"198.51.100.{i}")
               for i, service in enumerate((one, two, one, two))]
    assert [status for status, _ in answers] == [202] * 4
    before = refusals("all")
    with capture_logs() as logs:
        refused = [await ask(service, next(phones), follows, "198.51.100.9")
                   for service in (one, two)]
    assert [(status, body["error"]["code"]) for status, body in refused] == \
        [(429, "code_budget_reached")] * 2
    assert refused[0][1]["error"]["message"].startswith("Trop de codes ont été envoyés")
    assert refusals("all") == before + 2
    reached = [entry for entry in logs if entry["event"] == "sms_code_budget_reached"]
    assert [(e["scope"], e["budget"]) for e in reached] == [("all", 4)], \
        "said once per window, whichever instance refused first"

    # A restart (new instances, same NATS) remembers the hour's count.
    await one.stop()
    await two.stop()
    three = await start_sms(clock=clock, name=name, sms_code_budget="4,100")
    status, body = await ask(three, next(phones), follows, "198.51.100.20")
    assert (status, body["error"]["code"]) == (429, "code_budget_reached")
    # The next hour has a budget of its own.
    clock.at = clock() + timedelta(hours=1)
    status, _ = await ask(three, next(phones), follows, "198.51.100.21")
    assert status == 202
    await wait_for(lambda: len(standin.sends()) == 5, what="five code SMS")


async def test_one_number_range_has_its_own_smaller_budget(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    await start_sms(clock=Clock(datetime.now(UTC)), sms_code_budget="100,2")
    follows = await commune_follows(nc)
    answers = [await call(nc, "POST", SUBSCRIBE, {"phone": f"+3367812340{i}",
                                                  "follows": follows},
                          client_ip=f"198.51.100.{i}") for i in range(3)]
    assert [status for status, _ in answers] == [202, 202, 429]
    assert answers[2][1]["error"]["code"] == "code_budget_reached"
    # Another range still gets codes.
    status, _ = await call(nc, "POST", SUBSCRIBE, {"phone": "+33698123400", "follows": follows},
                           client_ip="198.51.100.50")
    assert status == 202
    await wait_for(lambda: len(standin.sends()) == 3, what="three code SMS")
    assert "33678123402" not in recipients(standin)


async def test_forged_forwarded_addresses_from_an_untrusted_peer_share_one_limit(
        nc: Client, start_sms: StartSms) -> None:
    await start_sms(sms_rate_per_client=3)
    follows = await commune_follows(nc)
    statuses = [(await call(nc, "POST", SUBSCRIBE,
                            {"phone": f"+3369912340{i}", "follows": follows},
                            client_ip="127.0.0.1",
                            headers={"x-forwarded-for": f"203.0.113.{i}"}))[0]
                for i in range(5)]
    assert statuses == [202, 202, 202, 429, 429]


async def test_a_trusted_proxy_is_believed_about_its_clients(
        nc: Client, start_sms: StartSms) -> None:
    await start_sms(sms_rate_per_client=2, trusted_proxies="10.0.0.0/8, 192.0.2.7")
    follows = await commune_follows(nc)
    phones = iter(f"+3369912350{i}" for i in range(10))

    async def via(peer: str, forwarded: str) -> int:
        return (await call(nc, "POST", SUBSCRIBE, {"phone": next(phones), "follows": follows},
                           client_ip=peer, headers={"x-forwarded-for": forwarded}))[0]

    # One resident behind the proxy is limited as one client...
    assert [await via("10.1.2.3", "203.0.113.1") for _ in range(3)] == [202, 202, 429]
    # ...and does not use up the limit of another resident behind it.
    assert await via("10.1.2.3", "203.0.113.2") == 202
    # A forged left part is skipped: the address the trusted proxies saw is the client.
    assert await via("192.0.2.7", "203.0.113.2, 10.9.9.9") == 202
    assert await via("192.0.2.7", "6.6.6.6, 203.0.113.2") == 429


async def test_two_ipv6_addresses_of_one_slash_64_share_a_limit(
        nc: Client, start_sms: StartSms) -> None:
    await start_sms(sms_rate_per_client=2)
    follows = await commune_follows(nc)
    phones = iter(f"+3369912360{i}" for i in range(10))
    statuses = [(await call(nc, "POST", SUBSCRIBE, {"phone": next(phones), "follows": follows},
                            client_ip=address))[0]
                for address in ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:9",
                                "2001:db8:1:2::abcd", "2001:db8:1:3::1")]
    assert statuses == [202, 202, 429, 202]


async def test_codes_are_paced_like_every_sms(
        nc: Client, standin: SmsStandin, start_sms: StartSms) -> None:
    await start_sms(sms_rate=2.0)  # one SMS every half second
    follows = await commune_follows(nc)
    started = datetime.now(UTC)
    for i in range(3):
        status, _ = await call(nc, "POST", SUBSCRIBE,
                               {"phone": f"+3369912370{i}", "follows": follows})
        assert status == 202
    await wait_for(lambda: len(standin.sends()) == 3, what="three code SMS")
    # The third waits two intervals after the first, which went no earlier than the start.
    last = max(datetime.fromisoformat(send["at"]) for send in standin.sends())
    assert last - started >= timedelta(seconds=1.0)
