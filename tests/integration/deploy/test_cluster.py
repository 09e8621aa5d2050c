"""The 3-node cluster of deploy/nats/cluster.conf, booted on loopback, losing one node.

Every stream and bucket has 3 replicas (`CRIEUR_NATS_REPLICAS=3 crieur provision`); the
services run as in production (their own users, TLS, CRIEUR_ENSURE_STREAMS=false) with the
URLs of the three nodes. A node is SIGKILLed (the leader of the stream that matters) and
nothing that was acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import email
import json
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import httpx
import nats
import nats.errors
import nats.js.errors
import pytest

from crieur.nats_server import free_port
from crieur.provision import definitions
from crieur_dev.standins.fcm import FcmStandin, write_service_account
from crieur_dev.standins.sms import SmsStandin
from crieur_dev.standins.smtp import SmtpStandin
from schemas import subjects
from schemas.buckets import CHANNEL_BUCKETS, SMS_SUBSCRIBERS
from schemas.notice import Category
from services.email.format import normalise_address
from services.email.links import Links
from services.email.subscribers import Follow, Registry, add_confirmed
from services.sms.phones import recipient_id
from services.sms.subscribers import Follow as SmsFollow
from services.sms.subscribers import Registry as SmsRegistry
from services.sms.subscribers import Subscriber as SmsSubscriber
from tests.helpers import eventually
from tests.integration.deploy.helpers import (
    DEPLOY,
    ConfiguredServer,
    Pki,
    Process,
    crieur,
    inbox,
    password,
    publish_alert,
    service_env,
    start_service,
)

pytestmark = pytest.mark.integration

COMMUNE = "70299"
SECRET = "cluster-test-secret-key-" + "x" * 32
PUBLIC_URL = "https://crieur.example"
SMS_KEY = "cluster-test-sms-key-" + "k" * 32


class Cluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pki = Pki.make(folder / "pki")
        route_ports = [free_port() for _ in range(3)]
        routes = {f"NATS_ROUTE_{i + 1}": f"nats-route://route:{password('route')}@127.0.0.1:{p}"
                  for i, p in enumerate(route_ports)}
        self.nodes = [
            ConfiguredServer(
                DEPLOY / "nats" / "cluster.conf", folder / f"node{i + 1}" / "jetstream",
                self.pki, name=f"crieur-{i + 1}",
                extra_env={"NATS_CLUSTER_LISTEN": f"127.0.0.1:{route_ports[i]}",
                           "NATS_PASSWORD_ROUTE": password("route"), **routes})
            for i in range(3)
        ]

    def start(self) -> None:
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_listening()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def url(self, user: str) -> str:
        """Every node, each with the credentials (CRIEUR_NATS_URL for a cluster)."""
        return ",".join(node.url(user) for node in self.nodes)

    def env(self, user: str, data_dir: Path) -> dict[str, str]:
        return service_env(self.nodes[0], user, data_dir) | {"CRIEUR_NATS_URL": self.url(user)}

    def node(self, name: str) -> ConfiguredServer:
        return next(n for n in self.nodes if n.name == name)

    async def connect(self, user: str) -> nats.NATS:
        tls = ssl.create_default_context(cafile=str(self.pki.ca_file))
        return await nats.connect([n.url(user) for n in self.nodes], tls=tls,
                                  max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                  inbox_prefix=inbox(user))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("cluster")
    cluster = Cluster(folder)
    cluster.start()
    try:
        env = cluster.env("provision", folder) | {"CRIEUR_NATS_REPLICAS": "3"}
        deadline = time.monotonic() + 60
        while True:  # JetStream answers once the nodes have elected a meta leader
            done = crieur(["provision"], env)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert done.returncode == 0, done.stderr
        operator = cluster.env("operator", folder)
        assert crieur(["commune", "add", COMMUNE, "Lavoncourt"], operator).returncode == 0
        yield cluster
    finally:
        cluster.stop()


def staff_token(cluster: Cluster, folder: Path) -> str:
    done = crieur(["staff", "add", "--commune", COMMUNE, "--name", "Mairie"],
                  cluster.env("operator", folder))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def leader_of(cluster: Cluster, stream: str) -> ConfiguredServer:
    nc = await cluster.connect("operator")
    try:
        info = await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()
    assert info.cluster is not None and info.cluster.leader
    return cluster.node(info.cluster.leader)


async def test_every_stream_and_bucket_has_three_replicas(cluster: Cluster) -> None:
    nc = await cluster.connect("operator")
    try:
        js = nc.jetstream()
        found = definitions()
        names = [s.name or "" for s in found.streams] + [f"KV_{b.name}" for b in found.buckets]
        # The channels' own buckets are provisioned with the rest (schemas/buckets.py).
        assert {f"KV_{b.name}" for b in CHANNEL_BUCKETS} <= set(names)
        for name in names:
            info = await js.stream_info(name)
            assert info.config.num_replicas == 3, name
            assert info.cluster is not None and info.cluster.leader, name
            assert len(info.cluster.replicas or []) == 2, name
    finally:
        await nc.close()


async def publish(http: httpx.AsyncClient, api: str, token: str, key: str) -> str:
    """Publish until acknowledged (201): a retry with the same Idempotency-Key is safe."""
    deadline = time.monotonic() + 90
    while True:
        try:
            answer = await http.post(
                f"{api}/api/v1/communes/{COMMUNE}/notices",
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                json={"category": "travaux", "title": f"Travaux {key}", "body": "Rue barrée."})
            if answer.status_code == 201:
                return str(answer.json()["id"])
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{key} never acknowledged"
        await asyncio.sleep(0.5)


async def test_front_door_loses_nothing_acknowledged_when_a_node_dies(
        cluster: Cluster, tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    front = start_service("services.notices",
                          cluster.env("notices", tmp_path) | {"CRIEUR_HTTP_PORT": str(port)},
                          tmp_path / "notices.log", api + "/healthz")
    killed: ConfiguredServer | None = None
    try:
        token = staff_token(cluster, tmp_path)
        acknowledged: list[str] = []
        async with httpx.AsyncClient(timeout=30) as http:
            for i in range(10):
                acknowledged.append(await publish(http, api, token, f"avant-{i}"))
            killed = await leader_of(cluster, "NOTICES")
            killed.kill()
            for i in range(10):
                acknowledged.append(await publish(http, api, token, f"apres-{i}"))

            async def all_listed() -> bool:
                answer = await http.get(f"{api}/api/v1/communes/{COMMUNE}/notices")
                if answer.status_code != 200:
                    return False
                return set(acknowledged) <= {n["id"] for n in answer.json()["notices"]}

            await eventually(all_listed, "the front door lists every acknowledged notice")
            assert (await http.get(api + "/healthz")).status_code == 200
        # Read back from the two nodes left: every acknowledged event is in NOTICES.
        nc = await cluster.connect("operator")
        try:
            js = nc.jetstream()
            for notice_id in acknowledged:
                msg = await js.get_last_msg("NOTICES", subjects.notice(COMMUNE, notice_id))
                assert notice_id.encode() in (msg.data or b"")
        finally:
            await nc.close()
        # The node comes back and catches up with what it missed.
        killed.start()
        async with httpx.AsyncClient(timeout=10) as http:
            async def caught_up() -> bool:
                jsz = (await http.get(f"http://127.0.0.1:{killed.monitor_port}/jsz",
                                      params={"streams": "true"})).json()
                streams = [s for a in jsz.get("account_details", [])
                           for s in a.get("stream_detail", []) if s["name"] == "NOTICES"]
                return bool(streams) and streams[0]["state"]["messages"] >= len(acknowledged)

            await eventually(caught_up, "the restarted node has every notice", within=90)
    finally:
        front.stop()
        if killed is not None and (killed.process is None or killed.process.poll() is not None):
            killed.start()


def fcm_sends(fcm: FcmStandin, notice_id: str) -> list[str]:
    """The topics the FCM stand-in was asked to send `notice_id` to."""
    return [r["body"]["message"]["topic"] for r in list(fcm.received)
            if r["path"].endswith("/messages:send") and r["status"] == 200
            and notice_id in json.dumps(r["body"])]


async def test_village_fan_out_survives_losing_a_node_midway(cluster: Cluster,
                                                             tmp_path: Path) -> None:
    """The whole village (front door, sign, email, SMS, push): one alert to N email and M SMS
    subscribers and the phones' topic, the JOBS leader killed midway; then a second notice
    while a node is down. Every subscriber gets the alert, the phones both notices."""
    n, m = 300, 80
    mailbox = SmtpStandin(tmp_path / "mail").start()
    sms = await SmsStandin(tmp_path / "sms-standin").start()
    fcm = FcmStandin(tmp_path / "fcm-standin")
    fcm.start(free_port())
    credentials = write_service_account(tmp_path / "fcm.json", f"{fcm.url}/token")
    running: list[Process] = []
    killed: ConfiguredServer | None = None
    try:
        nc = await cluster.connect("operator")
        try:
            registry = await Registry.open(nc.jetstream())
            links = Links(SECRET, PUBLIC_URL, 3600)
            follows = (Follow(commune=COMMUNE, categories=(Category.ALERTE,)),)
            addresses = [normalise_address(f"habitant{i}@example.org") for i in range(n)]
            await asyncio.gather(*(add_confirmed(registry, links.recipient_id(a), a, follows)
                                   for a in addresses))
            # SMS subscribers, written as confirming a code writes them.
            phones = SmsRegistry(await nc.jetstream().key_value(SMS_SUBSCRIBERS.name))
            numbers = [f"+3361{i:07d}" for i in range(m)]
            moment = datetime.now(UTC)
            await asyncio.gather(*(phones.put(recipient_id(SMS_KEY, number), SmsSubscriber(
                phone=number, confirmed=True, confirmed_at=moment, created_at=moment,
                follows=(SmsFollow(commune=COMMUNE, categories=(Category.ALERTE,)),)))
                for number in numbers))
        finally:
            await nc.close()

        api_port, email_port, panel_port = free_port(), free_port(), free_port()
        sign = f"http://127.0.0.1:{panel_port}"
        api = f"http://127.0.0.1:{api_port}"
        running.append(start_service(
            "services.notices",
            cluster.env("notices", tmp_path) | {"CRIEUR_HTTP_PORT": str(api_port),
                                                "CRIEUR_PUBLIC_URL": PUBLIC_URL},
            tmp_path / "notices.log", api + "/healthz"))
        running.append(start_service(
            "services.email",
            cluster.env("email", tmp_path) | {
                "CRIEUR_EMAIL_HTTP_PORT": str(email_port), "CRIEUR_EMAIL_SECRET_KEY": SECRET,
                "CRIEUR_PUBLIC_URL": PUBLIC_URL, "CRIEUR_SMTP_HOST": mailbox.host,
                "CRIEUR_SMTP_PORT": str(mailbox.port), "CRIEUR_SMTP_FROM": "avis@crieur.example",
                # Slow enough that the node dies in the middle of the fan-out.
                "CRIEUR_SMTP_RATE_PER_S": "40", "CRIEUR_CHANNEL_ACK_WAIT_S": "5",
                "CRIEUR_CHANNEL_BACKOFF_S": "0.5", "CRIEUR_CHANNEL_BACKOFF_MAX_S": "2",
                "CRIEUR_CHANNEL_MAX_ATTEMPTS": "50"},
            tmp_path / "email.log", f"http://127.0.0.1:{email_port}/readyz"))
        sms_port, push_port = free_port(), free_port()
        slow_kit = {"CRIEUR_CHANNEL_ACK_WAIT_S": "5", "CRIEUR_CHANNEL_BACKOFF_S": "0.5",
                    "CRIEUR_CHANNEL_BACKOFF_MAX_S": "2", "CRIEUR_CHANNEL_MAX_ATTEMPTS": "50"}
        running.append(start_service(
            "services.sms",
            cluster.env("sms", tmp_path) | slow_kit | {
                "CRIEUR_SMS_HTTP_PORT": str(sms_port), "CRIEUR_SMS_STANDIN_PORT": str(sms.port),
                "CRIEUR_SMS_SECRET_KEY": SMS_KEY, "CRIEUR_SMS_QUIET_HOURS": "",
                "CRIEUR_PUBLIC_URL": PUBLIC_URL,
                # Slow enough that the node dies in the middle of this fan-out too.
                "CRIEUR_SMS_RATE": "8"},
            tmp_path / "sms.log", f"http://127.0.0.1:{sms_port}/readyz"))
        running.append(start_service(
            "services.push",
            cluster.env("push", tmp_path) | slow_kit | {
                "CRIEUR_PUSH_HTTP_PORT": str(push_port),
                "CRIEUR_FCM_CREDENTIALS": str(credentials), "CRIEUR_FCM_URL": fcm.url,
                "CRIEUR_PUBLIC_URL": PUBLIC_URL},
            tmp_path / "push.log", f"http://127.0.0.1:{push_port}/readyz"))
        running.append(start_service(
            "services.panel",
            cluster.env("panel", tmp_path) | {
                "CRIEUR_PANEL_HTTP_PORT": str(panel_port), "CRIEUR_PANEL_COMMUNE": COMMUNE,
                "CRIEUR_PANEL_BLANK_HOURS": ""},
            tmp_path / "panel.log", sign + "/healthz"))
        token = staff_token(cluster, tmp_path)
        async with httpx.AsyncClient(timeout=30) as http:
            alert_id = await publish_alert(http, api, COMMUNE, token, "tempete")

        await eventually(lambda: len(mailbox.messages()) >= n // 5, "the fan-out under way")
        killed = await leader_of(cluster, "JOBS")
        killed.kill()
        sent_when_killed = len(mailbox.messages())

        def recipients() -> list[str]:
            found = []
            for path in mailbox.messages():
                msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
                found.append(str(msg["To"]))
            return found

        sms_when_killed = len(sms.sends())
        # The front door goes on publishing with a node down: the phones get it too.
        async with httpx.AsyncClient(timeout=30) as http:
            works_id = await publish(http, api, token, "apres-la-panne")
        await eventually(lambda: set(recipients()) >= set(addresses),
                         "every subscriber got the alert", within=240)

        def texted() -> list[str]:
            return ["+" + str(r["body"]["recipient"]) for r in sms.sends()
                    if "Tempete" in str(r["body"].get("content", ""))]

        await eventually(lambda: set(texted()) >= set(numbers),
                         "every SMS subscriber got the alert", within=240)
        await eventually(lambda: fcm_sends(fcm, alert_id) and fcm_sends(fcm, works_id),
                         "the phones' topics got both notices", within=120)
        assert fcm_sends(fcm, alert_id) == [f"crieur-{COMMUNE}-alerte"]
        assert fcm_sends(fcm, works_id) == [f"crieur-{COMMUNE}-travaux"]
        async with httpx.AsyncClient(timeout=10) as http:
            async def on_sign() -> bool:
                playlist = (await http.get(sign + "/playlist")).json()
                return alert_id in [n["id"] for n in playlist["notices"]]

            await eventually(on_sign, "the sign shows the alert after the node loss")
        got = recipients()
        assert sent_when_killed < n, "the node was not killed midway"
        assert set(got) == set(addresses)
        # Figures for the report (pytest -s): sent before the kill, and any duplicate.
        print(f"\nemail fan-out over a node loss: {n} subscribers, {sent_when_killed} sent "
              f"when {killed.name} died, {len(got)} mails, {len(got) - len(set(got))} twice")
        sent_sms = texted()
        assert set(sent_sms) == set(numbers)
        print(f"SMS fan-out over the same loss: {m} subscribers, {sms_when_killed} provider "
              f"calls when it died, {len(sent_sms)} alert SMS, "
              f"{len(sent_sms) - len(set(sent_sms))} twice")
    finally:
        for process in running:
            process.stop()
        mailbox.stop()
        await sms.stop()
        fcm.stop()
        if killed is not None:
            killed.start()
