"""The village started the way `make run` starts it, in a temporary folder, on free ports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from crieur.nats_server import free_port
from tests.helpers import repo_root


@dataclass
class Village:
    process: subprocess.Popen[str]
    data_dir: Path
    api: str
    panel: str
    nats_url: str
    token: str
    output: Path
    phone: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> int:
        """Ctrl-C, as a user would; returns the launcher's exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class PortTaken(RuntimeError):
    """A port chosen free was bound by another process before the village bound it."""


def start_village(data_dir: Path, env_extra: dict[str, str] | None = None,
                  python: str = sys.executable, cwd: Path | None = None) -> Village:
    """`python -m crieur.village` from `cwd` (the repository by default); an installed
    package is tested with its venv's python and a `cwd` outside the repository.

    Ports are chosen free, then bound by the services a moment later: with two test
    workers the other one may take a port in between (seen in CI: Errno 98 on a /healthz
    port). That, and only that, is tried again with new ports."""
    for attempt in range(3):
        try:
            return _start_village(data_dir, env_extra, python, cwd)
        except PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start_village(data_dir: Path, env_extra: dict[str, str] | None,
                   python: str, cwd: Path | None) -> Village:
    ports = {"CRIEUR_NATS_PORT": free_port(), "CRIEUR_HTTP_PORT": free_port(),
             "CRIEUR_PANEL_HTTP_PORT": free_port(),
             "CRIEUR_SMTP_PORT": free_port(), "CRIEUR_EMAIL_HTTP_PORT": free_port()}
    ports |= {"CRIEUR_FCM_STANDIN_PORT": free_port(), "CRIEUR_PUSH_HTTP_PORT": free_port(),
              "CRIEUR_DEMO_PHONE_PORT": free_port()}
    ports |= {"CRIEUR_SMS_HTTP_PORT": free_port(), "CRIEUR_SMS_STANDIN_PORT": free_port()}
    # The CAP feed stand-in too: two villages at once (a module's and a test's own) must
    # not both take its default port.
    ports |= {"CRIEUR_CAP_STANDIN_PORT": free_port()}
    ports |= {"CRIEUR_WEBPUSH_STANDIN_PORT": free_port(), "CRIEUR_WEBPUSH_HTTP_PORT": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
    env |= {k: str(v) for k, v in ports.items()}
    env |= {"CRIEUR_DATA_DIR": str(data_dir), "CRIEUR_LOG_FORMAT": "json"}
    env |= env_extra or {}
    data_dir.mkdir(parents=True, exist_ok=True)
    output = data_dir / "village.log"
    already = output.stat().st_size if output.exists() else 0  # a restart appends
    with output.open("a") as log:
        process = subprocess.Popen(
            [python, "-m", "crieur.village"], cwd=cwd or repo_root(), env=env,
            stdout=log, stderr=subprocess.STDOUT, text=True,
        )
    api = f"http://127.0.0.1:{ports['CRIEUR_HTTP_PORT']}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if b"address already in use" in output.read_bytes()[already:]:
                raise PortTaken(f"village exited early:\n{_why(output, already)}")
            raise RuntimeError(f"village exited early:\n{_why(output, already)}")
        if b"Ctrl-C stops everything" in output.read_bytes()[already:]:
            break
        time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError(f"village not ready:\n{_why(output, already)}")
    village = Village(
        process, data_dir, api, f"http://127.0.0.1:{ports['CRIEUR_PANEL_HTTP_PORT']}",
        f"nats://127.0.0.1:{ports['CRIEUR_NATS_PORT']}",
        (data_dir / "demo-staff-token").read_text().strip(), output,
    )
    village.phone = f"http://127.0.0.1:{ports['CRIEUR_DEMO_PHONE_PORT']}"
    if httpx.get(api + "/healthz").status_code != 200:
        village.stop()
        raise RuntimeError(f"village unhealthy:\n{output.read_text()[-3000:]}")
    return village


def _why(output: Path, since: int) -> str:
    """The errors of this start first (a shutdown's tail hides them), then the tail."""
    text = output.read_bytes()[since:].decode(errors="replace")
    errors = [line for line in text.splitlines()
              if '"level": "error"' in line or line.startswith("error")]
    return "\n".join(errors[:20]) + "\n…\n" + text[-2000:]


def launcher_events(village: Village, event: str) -> list[dict[str, Any]]:
    """The launcher's own JSON log lines named `event`, oldest first."""
    found = []
    for line in village.output.read_text().splitlines():
        if line.startswith("{") and f'"{event}"' in line:
            record = json.loads(line)
            if record.get("event") == event:
                found.append(record)
    return found


COMMUNE = "70299"  # the commune `make run` sets up (Lavoncourt)
# What a resident follows in these tests: the commune's alerts, shown at any hour.
ALERTS = [{"commune": COMMUNE, "categories": ["alerte"]}]


def eventually(check: Callable[[], Any], what: str, within: float = 60.0,
               every: float = 0.2) -> Any:
    """Poll `check` until truthy and return it: a generous bound, never a speed assertion."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"not within {within}s: {what}")


def notices_url(village: Village) -> str:
    return f"{village.api}/api/v1/communes/{COMMUNE}/notices"


def publish(village: Village, title: str, category: str = "information",
            body: str = "Essai de bout en bout.") -> str:
    """Publish through the front door as staff; the notice's id."""
    reply = httpx.post(notices_url(village), headers=village.auth, timeout=30,
                       json={"category": category, "title": title, "body": body})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def withdraw(village: Village, notice_id: str) -> None:
    reply = httpx.post(f"{notices_url(village)}/{notice_id}/withdraw", headers=village.auth,
                       timeout=30)
    assert reply.status_code == 200, reply.text


def sms_received(standin: str) -> list[dict[str, Any]]:
    """The send requests the SMS stand-in received, oldest first."""
    return [r for r in httpx.get(standin + "/_standin/received", timeout=10).json()
            if r["method"] == "POST"]


def subscribe_by_sms(village: Village, standin: str, phone: str, *,
                     confirm_as: str | None = None) -> dict[str, Any]:
    """A resident follows the alerts by SMS through the front door: asks, reads the code the
    stand-in received, confirms it (giving the number as `confirm_as` if set). Returns the
    code SMS as the provider was asked to send it."""
    subscriptions = village.api + "/api/v1/subscriptions/sms"
    # The SMS service may still be arming its consumers: the front door says 503 meanwhile.
    answer = eventually(lambda: (r := httpx.post(subscriptions, timeout=30, json={
        "phone": phone, "follows": ALERTS})).status_code == 202 and r,
        "the SMS channel answering", within=90)
    assert answer.json()["status"] == "pending"
    code_sms: dict[str, Any] = eventually(lambda: sms_received(standin), "the code SMS")[-1]
    code = re.search(r"\b(\d{6})\b", code_sms["body"]["content"])
    assert code is not None, code_sms
    confirmed = httpx.post(subscriptions + "/confirm", timeout=30,
                           json={"phone": confirm_as or phone, "code": code[1]})
    assert confirmed.status_code == 200, confirmed.text
    return code_sms


# Debian's chromium, headless and quiet: nothing reaches the network but the village.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium_browser(chromium: str) -> Iterator[Any]:
    """Playwright's browser on the `chromium` binary (the fixture's), closed after the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
