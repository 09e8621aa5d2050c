"""Operating the village: readiness, Prometheus metrics and one notice followed in the logs.

The village runs as `make run` runs it; a resident subscribes by email and by SMS (the demo
phones follow the commune by push), one alert is published, and then: every service says
it is ready, its counters moved, the alert's id (and its trace id) appears in the log lines
of the front door, the sign and the three channels, and no address or number appears in
clear in any log line.
"""

from __future__ import annotations

import email
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crieur.nats_server import free_port
from crieur_dev.standins.smtp import messages
from tests.e2e.helpers import (
    ALERTS,
    Village,
    eventually,
    publish,
    sms_received,
    start_village,
    subscribe_by_sms,
)

pytestmark = pytest.mark.e2e

ADDRESS = "habitante.observee@example.org"
PHONE = "06 98 76 54 32"
# A village of six processes on a shared machine: a generous bound for each wait.
WITHIN = 90.0
# Every way the number could be written out in a log line.
PHONE_FORMS = ("0698765432", "06 98 76 54 32", "33698765432", "+33698765432", "698765432")


class Observed:
    def __init__(self, village: Village, ports: dict[str, int], sms_standin: str) -> None:
        self.village = village
        self.sms_standin = sms_standin
        self.services = {"notices": village.api, "panel": village.panel} | {
            name: f"http://127.0.0.1:{port}" for name, port in ports.items()}


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    ports = {"email": free_port(), "push": free_port(), "sms": free_port()}
    standin = free_port()
    village = start_village(tmp_path_factory.mktemp("observed-village"), {
        "CRIEUR_EMAIL_HTTP_PORT": str(ports["email"]),
        "CRIEUR_PUSH_HTTP_PORT": str(ports["push"]),
        "CRIEUR_SMS_HTTP_PORT": str(ports["sms"]),
        "CRIEUR_SMS_STANDIN_PORT": str(standin),
        # The sign reports what it showed every second, not every five minutes.
        "CRIEUR_PANEL_REPORT_INTERVAL_S": "1"})
    try:
        yield Observed(village, ports, f"http://127.0.0.1:{standin}")
    finally:
        village.stop()


def scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = httpx.get(base + "/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(answer.text)
            for s in family.samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def subscribe_by_email(village: Village) -> None:
    mailbox = village.data_dir / "mail"
    already = len(messages(mailbox)) if mailbox.exists() else 0
    answer = eventually(lambda: (r := httpx.post(
        village.api + "/api/v1/subscriptions/email", timeout=30, json={
            "email": ADDRESS, "follows": ALERTS})
    ).status_code == 202 and r, "the email channel answering", within=WITHIN)
    assert answer.status_code == 202
    paths = eventually(lambda: len(messages(mailbox)) > already and messages(mailbox),
                       "the confirmation email", within=WITHIN)
    confirmation = email.message_from_bytes(paths[-1].read_bytes(), policy=policy.default)
    text = confirmation.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"(/api/v1/subscriptions/email/confirm/\S+)", text)
    assert link is not None
    assert httpx.get(village.api + link.group(1), timeout=30).status_code == 200
    # Opening the link shows a button; pressing it (a POST) confirms.
    assert httpx.post(village.api + link.group(1), timeout=30).status_code == 200


def log_lines(village: Village) -> list[dict[str, Any]]:
    """Every JSON line the village's processes wrote (they share the launcher's output)."""
    found = []
    for line in village.output.read_text().splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return found


def test_every_service_is_ready_and_counts_a_delivery_followed_by_its_notice_id(
        observed: Observed) -> None:
    village = observed.village
    for name, base in observed.services.items():
        eventually(lambda base=base: httpx.get(base + "/readyz", timeout=10).status_code == 200,
                   f"{name} ready", within=WITHIN)
        assert httpx.get(base + "/readyz", timeout=10).json() == {"status": "ready"}
        assert httpx.get(base + "/healthz", timeout=10).status_code == 200
    subscribe_by_email(village)
    subscribe_by_sms(village, observed.sms_standin, PHONE)
    time.sleep(1.0)  # the fan-outs' indexes follow the subscriber buckets
    before = {name: scrape(base) for name, base in observed.services.items()}

    alert = publish(village, "Orage : restez à l'abri", "alerte", body="Grêle attendue vers 18 h.")

    def moved(where: str, name: str, /, **labels: str) -> bool:
        return value(scrape(observed.services[where]), name, **labels) > value(
            before[where], name, **labels)

    # A delivery by each channel, and the sign showing it, as the counters tell.
    for channel in ("email", "sms", "push"):
        eventually(lambda channel=channel: moved(channel, "crieur_deliveries_total",
                                                 channel=channel, outcome="sent"),
                   f"{channel} counts a sent delivery", within=WITHIN)
        assert moved(channel, "crieur_publish_to_send_seconds_count", channel=channel)
        assert moved(channel, "crieur_send_seconds_count", channel=channel)
        assert moved(channel, "crieur_messages_handled_total", kind="notice_event",
                     result="planned")
        assert moved(channel, "crieur_messages_handled_total", kind="job", result="sent")
    eventually(lambda: moved("panel", "crieur_deliveries_total", channel="panel",
                             outcome="shown"), "the sign counts what it showed", within=WITHIN)
    assert moved("panel", "crieur_messages_handled_total", service="panel",
                 kind="notice_event", result="read")
    assert moved("notices", "crieur_notice_events_published_total", kind="published")
    assert moved("notices", "crieur_http_request_seconds_count", service="notices",
                 status="2xx")
    # The alert went out for real, not only in the counters.
    assert any("Orage" in r["body"]["content"] for r in sms_received(observed.sms_standin))

    # One notice followed across services: its id in every service's log, one trace id.
    def lines_about_alert() -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for record in log_lines(village):
            if record.get("notice_id") == alert:
                found.setdefault(str(record.get("component")), []).append(record)
        return found

    services = ("notices", "email", "sms", "push", "panel")
    try:
        # As generous as the other waits: under a loaded CI machine a log line can come late.
        about = eventually(lambda: (found := lines_about_alert()) and set(services) <= set(found)
                           and found, f"{alert} in the logs of {services}", within=WITHIN)
    except AssertionError as error:
        missing = set(services) - set(lines_about_alert())
        raise AssertionError(f"{error}; no line about it from {sorted(missing)}") from None
    trace_ids = {r["trace_id"] for r in about["notices"] if r.get("trace_id")}
    assert len(trace_ids) == 1, about["notices"]
    for channel in ("email", "sms", "push"):
        assert trace_ids <= {r.get("trace_id") for r in about[channel]}, about[channel]

    # No resident's address or number in clear, in any line of any process.
    text = village.output.read_text()
    assert ADDRESS not in text
    assert ADDRESS.split("@")[0] not in text
    for form in PHONE_FORMS:
        assert form not in text, form


def nats_pid(village: Village) -> int:
    """The village's own nats-server: the process whose store is under its data folder."""
    store = str(village.data_dir / "nats")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"nats-server") and store.encode() in argv:
            return int(proc.name)
    raise AssertionError(f"no nats-server with its store in {store}")


def test_readyz_says_why_while_nats_does_not_answer(observed: Observed) -> None:
    """Not ready (503, with reasons) while NATS is frozen; ready again once it answers."""
    pid = nats_pid(observed.village)
    os.kill(pid, signal.SIGSTOP)
    try:
        for name in ("notices", "email", "sms"):
            answer = eventually(lambda name=name: (r := httpx.get(
                observed.services[name] + "/readyz", timeout=15)).status_code == 503 and r,
                f"{name} not ready without NATS", within=60)
            assert answer.json()["status"] == "not_ready"
            assert answer.json()["reasons"], answer.json()
        # Liveness is another question: the sign keeps showing its playlist.
        assert httpx.get(observed.village.panel + "/healthz", timeout=15).status_code == 200
    finally:
        os.kill(pid, signal.SIGCONT)
    for name, base in observed.services.items():
        eventually(lambda base=base: httpx.get(base + "/readyz", timeout=10).status_code == 200,
                   f"{name} ready again", within=WITHIN)
