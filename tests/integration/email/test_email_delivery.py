"""The proof of the email channel: real nats-server, real SMTP server, the real front door.

1,000 confirmed subscribers get 1,000 correct messages; unconfirmed and unsubscribed get
none; a worker killed with SIGKILL mid-fan-out ends with everything delivered; a relay
answering 451 for a while too; a 550 for one address bounces it alone; a withdrawal
mid-fan-out stops the rest; a correction goes to those who got the first version.
"""

from __future__ import annotations

import asyncio
import io
import math
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from crieur.channel.settings import ChannelSettings
from crieur.nats_server import free_port
from crieur_dev.standins.smtp import SmtpStandin
from schemas.deliveries import DeliveryOutcome, DeliveryReport
from services.email.links import Links
from services.email.service import EmailService
from services.email.subscribers import Follow, Registry, Subscriber, add_confirmed, now
from tests.helpers import read_subject, repo_root
from tests.integration.email.helpers import PUBLIC_URL, SECRET, parse, text_of, wait_for
from tests.integration.notices.helpers import FrontDoor

pytestmark = pytest.mark.integration

LINKS = Links(SECRET, PUBLIC_URL, 3600)


def address(n: int, tag: str = "r") -> str:
    return f"{tag}{n:05d}@example.org"


async def seed(registry: Registry, addresses: list[str], commune: str,
               categories: tuple[str, ...] = ("alerte",), confirmed: bool = True) -> list[str]:
    """Subscribers written straight into the registry, as a bench or a migration would."""
    follows = (Follow.model_validate({"commune": commune, "categories": categories}),)
    rids = [LINKS.recipient_id(a) for a in addresses]
    for start in range(0, len(addresses), 200):
        chunk = list(zip(rids[start:start + 200], addresses[start:start + 200], strict=True))
        if confirmed:
            await asyncio.gather(*(add_confirmed(registry, rid, a, follows) for rid, a in chunk))
        else:
            await asyncio.gather(*(registry.put(rid, Subscriber(
                email=a, follows=follows, created_at=now())) for rid, a in chunk))
    return rids


async def publish(door: FrontDoor, title: str = "Tempête : restez chez vous",
                  category: str = "alerte") -> dict[str, Any]:
    response = await door.http.post(door.notices_url(), headers=door.auth, json={
        "category": category, "title": title, "body": "Vents à 120 km/h attendus cette nuit."})
    assert response.status_code == 201, response.text
    return dict(response.json())


def received(mailbox: SmtpStandin, notice_id: str, kind: str = "published") -> list[EmailMessage]:
    found = []
    for path in mailbox.messages():
        msg = parse(path)
        if str(msg["Message-ID"]).startswith(f"<{notice_id}.") and f".{kind}." in msg["Message-ID"]:
            found.append(msg)
    return found


async def email_reports(door: FrontDoor, notice_id: str) -> list[DeliveryReport]:
    found = await read_subject(door.store.js, f"deliveries.email.{door.insee}", wait_s=0.5)
    # One per delivery: the worker reports a batch of jobs in one message.
    reports = [each for m in found for each in DeliveryReport.model_validate_json(m.data).each()]
    return [r for r in reports if r.notice_id == notice_id]


async def test_a_thousand_confirmed_subscribers_get_one_correct_email_each(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email()
    registry = service.registry
    assert registry is not None
    insee = front_door.insee
    confirmed = [address(n) for n in range(1000)]
    rids = await seed(registry, confirmed, insee)
    await seed(registry, [address(n, "pending") for n in range(20)], insee, confirmed=False)
    gone = [address(n, "gone") for n in range(20)]
    for rid in await seed(registry, gone, insee):
        unsubscribe = LINKS.unsubscribe_url(rid).removeprefix(PUBLIC_URL)
        assert (await front_door.http.post(unsubscribe, content=b"List-Unsubscribe=One-Click")
                ).status_code == 200
    await seed(registry, [address(n, "works") for n in range(20)], insee, ("travaux",))
    await wait_for(lambda: len(registry.matching(insee, "alerte")) == 1000, what="index")

    notice = await publish(front_door)
    await wait_for(lambda: len(mailbox.messages()) >= 1000, within_s=120, what="1,000 emails")
    await asyncio.sleep(1.0)  # anything more would be a duplicate or a leak

    mails = [parse(p) for p in mailbox.messages()]
    assert len(mails) == 1000
    by_address = {m["To"]: m for m in mails}
    assert sorted(by_address) == sorted(confirmed), "confirmed only, each once"
    for rid, to in zip(rids, confirmed, strict=True):
        msg = by_address[to]
        assert msg["From"] == "Mairie de Lavoncourt <avis@crieur.example.org>"
        assert msg["Subject"] == "Alerte : Tempête : restez chez vous"
        assert msg["Message-ID"] == f"<{notice['id']}.1.published.{rid}@crieur.example.org>"
        unsubscribe = msg["List-Unsubscribe"].strip("<>")
        prefix = f"{PUBLIC_URL}/api/v1/subscriptions/email/unsubscribe/"
        assert unsubscribe.startswith(prefix)
        assert LINKS.read("unsubscribe", unsubscribe.removeprefix(prefix))[0] == rid
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Return-Path"] == "<avis@crieur.example.org>"
        assert msg["Delivered-To"] == to
        assert msg.get_content_type() == "multipart/alternative"
        body = text_of(msg)
        assert f"{PUBLIC_URL}/communes/{insee}/notices/{notice['id']}" in body
        manage = re.search(re.escape(f"{PUBLIC_URL}/api/v1/subscriptions/email/manage/")
                           + r"(\S+)", body)
        assert manage is not None and LINKS.read("manage", manage[1])[0] == rid
    reports = await email_reports(front_door, notice["id"])
    assert Counter(r.outcome for r in reports) == {DeliveryOutcome.SENT: 1000}
    assert {r.target for r in reports} == {rid[:12] for rid in rids}
    assert not any("@" in r.target + r.detail for r in reports), "no address on the bus"


async def test_a_correction_goes_to_those_who_got_the_first_version(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email()
    assert service.registry is not None
    first = [address(n, "first") for n in range(5)]
    await seed(service.registry, first, front_door.insee)
    await wait_for(lambda: service.registry is not None and
                   len(service.registry.matching(front_door.insee, "alerte")) == 5, what="index")
    notice = await publish(front_door)
    await wait_for(lambda: len(received(mailbox, notice["id"])) == 5, what="publication")
    await seed(service.registry, [address(n, "late") for n in range(3)], front_door.insee)
    response = await front_door.http.patch(
        f"{front_door.notices_url()}/{notice['id']}", headers=front_door.auth,
        json={"title": "Tempête : restez chez vous jusqu’à midi"})
    assert response.status_code == 200, response.text
    await wait_for(lambda: len(received(mailbox, notice["id"], "corrected")) == 5,
                   what="corrections")
    await asyncio.sleep(0.5)
    corrections = received(mailbox, notice["id"], "corrected")
    assert sorted(m["To"] for m in corrections) == sorted(first)
    assert {m["Subject"] for m in corrections} == {
        "Rectificatif — Alerte : Tempête : restez chez vous jusqu’à midi"}
    assert all(text_of(m).startswith("RECTIFICATIF") for m in corrections)


async def test_a_photo_shows_in_the_html_part_with_alt_text_and_is_linked_in_the_text(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email()
    assert service.registry is not None
    await seed(service.registry, [address(1, "photo")], front_door.insee)
    await wait_for(lambda: service.registry is not None and
                   len(service.registry.matching(front_door.insee, "alerte")) == 1, what="index")
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(png, "PNG")
    upload = await front_door.http.post(
        f"/api/v1/communes/{front_door.insee}/attachments", headers=front_door.auth,
        files={"file": ("Pont effondré.png", png.getvalue(), "image/png")})
    assert upload.status_code == 201, upload.text
    photo_id = upload.json()["id"]
    response = await front_door.http.post(front_door.notices_url(), headers=front_door.auth, json={
        "category": "alerte", "title": "Pont de la Saône fermé",
        "body": "Le pont est fermé jusqu’à nouvel ordre.", "attachments": [photo_id]})
    assert response.status_code == 201, response.text
    notice = response.json()
    await wait_for(lambda: len(received(mailbox, notice["id"])) == 1, what="the email")

    [msg] = received(mailbox, notice["id"])
    path = f"/communes/{front_door.insee}/attachments/{photo_id}"
    html_part = msg.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert (f'<img src="{PUBLIC_URL}{path}" alt="Photo jointe à l’avis : Pont de la Saône '
            'fermé"') in html
    text = text_of(msg)
    assert f"Photo : {PUBLIC_URL}{path}" in text
    assert "Le pont est fermé jusqu’à nouvel ordre." in text
    # The address in the email is the one the front door serves the photo at.
    image = await front_door.http.get(path)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (40, 30)


async def test_a_relay_answering_451_for_a_while_ends_with_everything_delivered(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email(channel_max_attempts=30)
    assert service.registry is not None
    addresses = [address(n, "busy") for n in range(100)]
    await seed(service.registry, addresses, front_door.insee)
    await wait_for(lambda: service.registry is not None and
                   len(service.registry.matching(front_door.insee, "alerte")) == 100,
                   what="index")
    mailbox.answer(451, seconds=2.0)
    notice = await publish(front_door)
    await wait_for(lambda: mailbox.mailbox.refused > 0, what="the relay to refuse")
    await wait_for(lambda: len(received(mailbox, notice["id"])) >= 100, within_s=90,
                   what="everything delivered")
    await asyncio.sleep(0.5)
    assert sorted(m["To"] for m in received(mailbox, notice["id"])) == sorted(addresses)


async def test_a_550_for_one_address_bounces_it_and_the_others_are_delivered(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email(email_max_bounces=1)
    registry = service.registry
    assert registry is not None
    addresses = [address(n, "some") for n in range(30)]
    rids = await seed(registry, addresses, front_door.insee)
    await wait_for(lambda: len(registry.matching(front_door.insee, "alerte")) == 30,
                   what="index")
    mailbox.answer(550, address=addresses[7])
    notice = await publish(front_door)
    await wait_for(lambda: len(received(mailbox, notice["id"])) >= 29, what="29 emails")
    bounced_rid = rids[7]

    async def bounced() -> Subscriber | None:
        found = await registry.get(bounced_rid)
        return found[0] if found else None

    for _ in range(100):
        subscriber = await bounced()
        if subscriber is not None and subscriber.bounces:
            break
        await asyncio.sleep(0.1)
    assert subscriber is not None
    assert (subscriber.bounces, subscriber.suspended) == (1, True)
    assert sorted(m["To"] for m in received(mailbox, notice["id"])) == sorted(
        a for a in addresses if a != addresses[7])
    reports = await email_reports(front_door, notice["id"])
    assert [r.target for r in reports if r.outcome == DeliveryOutcome.BOUNCED] == [
        bounced_rid[:12]]
    assert "smtp 550" in next(r.detail for r in reports if r.outcome == DeliveryOutcome.BOUNCED)
    # Suspended: the next notice does not even plan a job for it.
    await wait_for(lambda: bounced_rid not in registry.matching(front_door.insee, "alerte"),
                   what="the index to drop the suspended address")


async def test_a_withdrawal_mid_fan_out_stops_the_rest(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    # Paced, so the withdrawal lands while most jobs are still queued.
    service: EmailService = await start_email(smtp_rate_per_s=40, smtp_pool=2)
    registry = service.registry
    assert registry is not None
    addresses = [address(n, "many") for n in range(400)]
    await seed(registry, addresses, front_door.insee)
    await wait_for(lambda: len(registry.matching(front_door.insee, "alerte")) == 400,
                   what="index")
    notice = await publish(front_door)
    await wait_for(lambda: len(received(mailbox, notice["id"])) >= 20, what="20 emails")
    response = await front_door.http.post(
        f"{front_door.notices_url()}/{notice['id']}/withdraw", headers=front_door.auth)
    assert response.status_code == 200, response.text

    async def settled() -> list[DeliveryReport]:
        reports = await email_reports(front_door, notice["id"])
        return reports

    for _ in range(600):
        got = {m["To"] for m in received(mailbox, notice["id"])}
        withdrawals = {m["To"] for m in received(mailbox, notice["id"], "withdrawn")}
        if got and withdrawals == got:
            reports = await settled()
            dropped = [r for r in reports if r.outcome == DeliveryOutcome.DROPPED]
            if len(dropped) + len(got) >= 400:
                break
        await asyncio.sleep(0.1)
    got = {m["To"] for m in received(mailbox, notice["id"])}
    withdrawals = received(mailbox, notice["id"], "withdrawn")
    assert 20 <= len(got) < 400, "the withdrawal stopped the rest"
    assert sorted(m["To"] for m in withdrawals) == sorted(got), (
        "those who got it, and only they, are told it is withdrawn, once each")
    assert {m["Subject"] for m in withdrawals} == {"Avis retiré : Tempête : restez chez vous"}
    reports = await settled()
    assert len([r for r in reports if r.outcome == DeliveryOutcome.DROPPED]) == 400 - len(got)


@pytest.fixture
def email_process_env(nats_url: str, mailbox: SmtpStandin, tmp_path: Path) -> Iterator[
        dict[str, str]]:
    env = dict(os.environ, CRIEUR_NATS_URL=nats_url, CRIEUR_SMTP_HOST=mailbox.host,
               CRIEUR_SMTP_PORT=str(mailbox.port), CRIEUR_SMTP_POOL="4",
               CRIEUR_SMTP_FROM="avis@crieur.example.org", CRIEUR_PUBLIC_URL=PUBLIC_URL,
               CRIEUR_EMAIL_SECRET_KEY=SECRET, CRIEUR_DATA_DIR=str(tmp_path),
               CRIEUR_EMAIL_CHANNEL_NAME=f"email-kill-{os.getpid()}-{free_port()}",
               CRIEUR_EMAIL_HTTP_PORT=str(free_port()), CRIEUR_CHANNEL_ACK_WAIT_S="3",
               CRIEUR_SMTP_RATE_PER_S="150", CRIEUR_LOG_FORMAT="json")
    yield env


def start_process(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "services.email"], env=env, cwd=repo_root(),
                            stdout=out, stderr=subprocess.STDOUT)


async def wait_healthy(env: dict[str, str], process: subprocess.Popen[bytes]) -> None:
    url = f"http://127.0.0.1:{env['CRIEUR_EMAIL_HTTP_PORT']}/healthz"
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            assert process.poll() is None, "the email service exited"
            try:
                if (await http.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the email service never became healthy")


async def test_a_worker_killed_mid_fan_out_and_restarted_delivers_everything(
        front_door: FrontDoor, mailbox: SmtpStandin, nats_url: str,
        email_process_env: dict[str, str], tmp_path: Path) -> None:
    import nats

    nc = await nats.connect(nats_url)
    try:
        registry = await Registry.open(nc.jetstream())
        addresses = [address(n, "kill") for n in range(500)]
        await seed(registry, addresses, front_door.insee)
    finally:
        await nc.close()
    log = tmp_path / "email.log"
    process = start_process(email_process_env, log)
    try:
        await wait_healthy(email_process_env, process)
        notice = await publish(front_door)
        await wait_for(lambda: len(received(mailbox, notice["id"])) >= 60, what="60 emails")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        at_kill = len(received(mailbox, notice["id"]))
        assert at_kill < 500, "killed mid-fan-out"
        process = start_process(email_process_env, log)
        await wait_healthy(email_process_env, process)
        await wait_for(lambda: len({m["To"] for m in received(mailbox, notice["id"])}) >= 500,
                       within_s=120, what="every email after the restart")
        await asyncio.sleep(1.0)
    finally:
        process.terminate()
        process.wait(30)
    mails = received(mailbox, notice["id"])
    assert {m["To"] for m in mails} == set(addresses)
    twice = [a for a, n in Counter(m["To"] for m in mails).items() if n > 1]
    # At least once: only the sends in flight at the kill (at most the pool, 4) may repeat,
    # and those whose sent records were still lingering to be written in a group (150 a
    # second for the linger).
    linger_s = ChannelSettings().channel_record_linger_s
    assert len(twice) <= 4 + math.ceil(150 * linger_s), twice
    # uvicorn re-raises the SIGTERM it handled once the drain is over.
    assert process.returncode in (0, -signal.SIGTERM)
    logged = log.read_text()
    assert '"email_stopped"' in logged, "SIGTERM drains and stops cleanly"
    assert "@example.org" not in logged, "no address in the logs"


async def test_an_unsubscribe_wins_over_a_job_already_queued(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    # Paced, so most jobs are still queued when two residents leave.
    service: EmailService = await start_email(smtp_rate_per_s=10, smtp_pool=1)
    registry = service.registry
    assert registry is not None
    addresses = [address(n, "queued") for n in range(40)]
    rids = await seed(registry, addresses, front_door.insee)
    await wait_for(lambda: len(registry.matching(front_door.insee, "alerte")) == 40,
                   what="index")
    notice = await publish(front_door)
    await wait_for(lambda: len(received(mailbox, notice["id"])) >= 3, what="3 emails")
    # Jobs are planned in recipient id order: the last two are far from their turn.
    leaving = [a for _, a in sorted(zip(rids, addresses, strict=True))][-2:]
    assert not {m["To"] for m in received(mailbox, notice["id"])} & set(leaving)
    for a in leaving:
        link = LINKS.unsubscribe_url(rids[addresses.index(a)]).removeprefix(PUBLIC_URL)
        assert (await front_door.http.post(link, content=b"List-Unsubscribe=One-Click")
                ).status_code == 200
    await wait_for(lambda: len(received(mailbox, notice["id"])) >= 38, within_s=60,
                   what="the others")
    await asyncio.sleep(0.5)
    assert sorted(m["To"] for m in received(mailbox, notice["id"])) == sorted(
        a for a in addresses if a not in leaving)
    reports = await email_reports(front_door, notice["id"])
    dropped = {r.target: r.detail for r in reports if r.outcome == DeliveryOutcome.DROPPED}
    assert dropped == {rids[addresses.index(a)][:12]: "unsubscribed" for a in leaving}


async def test_a_suspended_address_that_confirms_again_is_back(
        front_door: FrontDoor, mailbox: SmtpStandin, start_email: Any) -> None:
    service: EmailService = await start_email()
    registry = service.registry
    assert registry is not None
    [rid] = await seed(registry, ["back@example.org"], front_door.insee)
    found = await registry.get(rid)
    assert found is not None
    await registry.put(rid, found[0].model_copy(update={"bounces": 3, "suspended": True}))
    await wait_for(lambda: rid not in registry.matching(front_door.insee, "alerte"),
                   what="suspension seen")
    response = await front_door.http.post("/api/v1/subscriptions/email", json={
        "email": "back@example.org",
        "follows": [{"commune": front_door.insee, "categories": ["alerte"]}]})
    assert response.status_code == 202
    await wait_for(lambda: len(mailbox.messages()) == 1, what="confirmation")
    link = LINKS.confirm_url(rid, []).removeprefix(PUBLIC_URL)  # what its email links to
    assert (await front_door.http.get(link)).status_code == 200
    assert (await front_door.http.post(link)).status_code == 200
    found = await registry.get(rid)
    assert found is not None and (found[0].bounces, found[0].suspended) == (0, False)
    await wait_for(lambda: rid in registry.matching(front_door.insee, "alerte"), what="back")
