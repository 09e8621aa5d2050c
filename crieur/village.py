"""`make run`: the whole village on one machine.

Starts a real nats-server (unless CRIEUR_NATS_URL names one), runs the setup steps (the
demo commune and its staff token), starts every service of `SERVICES`, prints where to
go, and restarts a service that dies (with a backoff) while the others keep serving; its
own nats-server is watched and restarted the same way. On Ctrl-C it stops everything it
started: services first (they drain), then the server.
This module imports no service: services are named by module, and run as processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog

from crieur import log as logging_setup
from crieur.nats_server import NatsServer
from crieur.process import die_with_parent
from crieur.settings import CommonSettings

log = structlog.get_logger("crieur.village")

# A service that dies is started again after 1 s, then 2, 4... up to 30 s while it keeps
# dying; once it has stayed up this long, the next death starts from 1 s again.
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 30.0


@dataclass(frozen=True)
class Service:
    """One process of the village. A new channel joins it by adding its line (and its
    stand-in's) to `SERVICES`, as its manifest declares them."""

    name: str
    module: str
    port_var: str
    default_port: int
    health_path: str = "/healthz"
    # What the start-up message calls its page, if it has one worth opening.
    label: str = ""
    # Started instead of `python -m module` (a stand-in of a provider, for instance).
    command: tuple[str, ...] = ()
    # Started only when this variable is set (by the user, or by a setup step).
    when: str = ""
    # Not started when this variable is set: a real provider is configured instead.
    unless_set: str = ""
    # Starts the process instead of `argv()` (the launcher's own nats-server).
    spawn: Callable[[], subprocess.Popen[bytes]] | None = None

    def argv(self) -> list[str]:
        return list(self.command) if self.command else [sys.executable, "-m", self.module]


# A channel's line and its stand-in's are those of its manifest (services/<channel>/
# manifest.py; this runtime imports no service): tests/unit/kit/test_manifests.py checks.
SERVICES: tuple[Service, ...] = (
    Service("notices", "services.notices", "CRIEUR_HTTP_PORT", 8080),
    Service("panel", "services.panel", "CRIEUR_PANEL_HTTP_PORT", 8081, label="LED sign"),
    # The SMTP stand-in keeps every email under <data dir>/mail; no HTTP: ready once it listens.
    Service("smtp", "crieur_dev.standins.smtp", "CRIEUR_SMTP_PORT", 2525, health_path="",
            unless_set="CRIEUR_SMTP_HOST"),
    Service("email", "services.email", "CRIEUR_EMAIL_HTTP_PORT", 8085),
    Service("fcm-standin", "crieur_dev.standins.fcm", "CRIEUR_FCM_STANDIN_PORT", 8083,
            when="CRIEUR_FCM_STANDIN"),
    Service("push", "services.push", "CRIEUR_PUSH_HTTP_PORT", 8084),
    Service("phone", "crieur_dev.standins.phone", "CRIEUR_DEMO_PHONE_PORT", 8082,
            label="Demo phone"),
        # The SMS provider's stand-in (what it received: its page, var/standins/sms.jsonl).
    Service("sms-standin", "crieur_dev.standins.sms", "CRIEUR_SMS_STANDIN_PORT", 8087,
            label="SMS stand-in"),
    Service("sms", "services.sms", "CRIEUR_SMS_HTTP_PORT", 8086),
    # A browser vendor's push service: decrypts what it gets, for the demo phone page.
    Service("webpush-standin", "crieur_dev.standins.webpush", "CRIEUR_WEBPUSH_STANDIN_PORT", 8089,
            label="Web Push stand-in"),
    Service("webpush", "services.webpush", "CRIEUR_WEBPUSH_HTTP_PORT", 8090),
    # Official alerts for Haute-Saône in MeteoAlarm's format (set by its setup step).
    Service("cap-standin", "crieur_dev.standins.capfeed", "CRIEUR_CAP_STANDIN_PORT", 8088,
            when="CRIEUR_CAP_STANDIN", label="MeteoAlarm stand-in"),
)

# Run once, in order, before the services start; the last JSON line each prints is kept
# (the demo step prints the demo commune and its staff token).
SETUP: tuple[tuple[str, ...], ...] = (
    (sys.executable, "-m", "services.notices.demo"),
    # Without FCM credentials: a service account for the local FCM stand-in, and demo phones.
    (sys.executable, "-m", "crieur_dev.standins.fcm", "setup"),
    # Unless CRIEUR_CAP_FEEDS is set: the MeteoAlarm stand-in as the official alerts' feed.
    (sys.executable, "-m", "crieur_dev.standins.capfeed", "setup"),
    # The Web Push service may post to its stand-in (CRIEUR_WEBPUSH_EXTRA_HOSTS).
    (sys.executable, "-m", "crieur_dev.standins.webpush", "setup"),
)


def run_setup(env: dict[str, str], data_dir: Path) -> dict[str, str]:
    said: dict[str, str] = {}
    for argv in SETUP:
        done = subprocess.run([*argv, str(data_dir)], env=env, stdout=subprocess.PIPE,
                              check=False, timeout=120, preexec_fn=die_with_parent)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[1:])} failed with {done.returncode}")
        lines = done.stdout.decode().strip().splitlines()
        if lines:
            said |= json.loads(lines[-1])
    return said


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """For a service without HTTP (the SMTP stand-in): ready once its port accepts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"port {port}: exited with {process.returncode} before ready")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"port {port} not listening after {timeout}s")


def start(service: Service, env: dict[str, str]) -> subprocess.Popen[bytes]:
    if service.spawn is not None:
        process = service.spawn()
    else:
        process = subprocess.Popen(service.argv(), env=env, start_new_session=True,
                                   preexec_fn=die_with_parent)
    log.info("service_started", service=service.name, pid=process.pid)
    return process


@dataclass
class Running:
    """One service under the launcher's watch: its process and when to start it again."""

    service: Service
    process: subprocess.Popen[bytes]
    started: float
    backoff_s: float = FIRST_BACKOFF_S
    restart_at: float | None = None
    restarts: int = 0

    def check(self, env: dict[str, str], now: float) -> None:
        """Restart a dead process once its backoff has passed; the others are untouched."""
        if self.restart_at is None:
            code = self.process.poll()
            if code is None:
                return
            if now - self.started >= STABLE_AFTER_S:
                self.backoff_s = FIRST_BACKOFF_S
            self.restart_at = now + self.backoff_s
            log.error("service_died", service=self.service.name, pid=self.process.pid,
                      exit_code=code, restart_in_s=self.backoff_s)
            self.backoff_s = min(self.backoff_s * 2, MAX_BACKOFF_S)
        elif now >= self.restart_at:
            self.restart_at = None
            self.restarts += 1
            self.process = start(self.service, env)
            self.started = now
            log.warning("service_restarted", service=self.service.name, pid=self.process.pid,
                        restarts=self.restarts)


def mail_line(urls: dict[str, str], data_dir: Path) -> str:
    if "smtp" in urls:
        return f"every email kept in {data_dir / 'mail'} (SMTP stand-in on {urls['smtp'][7:]})"
    return f"sent through {os.environ.get('CRIEUR_SMTP_HOST')} (CRIEUR_SMTP_HOST)"


def push_line(urls: dict[str, str], data_dir: Path) -> str:
    if "fcm-standin" in urls:
        return (f"FCM stand-in on {urls['fcm-standin']}, requests kept in "
                f"{data_dir / 'standins' / 'fcm.jsonl'} (see the demo phone)")
    return "Firebase Cloud Messaging (CRIEUR_FCM_CREDENTIALS)"


def banner(urls: dict[str, str], demo: dict[str, str], nats_url: str, data_dir: Path) -> str:
    notices, insee, token = urls["notices"], demo["insee"], demo["token"]
    others = "".join(f"  {s.label:<15} {urls[s.name]}/\n" for s in SERVICES if s.label)
    return f"""
Crieur is running — the village of {demo['name']} ({insee}).

  Notices API     {notices}/api/v1/communes/{insee}/notices
  Atom feed       {notices}/api/v1/communes/{insee}/feed.atom
  OpenAPI         {notices}/openapi.json  (docs: {notices}/docs)
{others}  NATS            {nats_url}  (data in {data_dir})
  Email           {mail_line(urls, data_dir)}
  Push            {push_line(urls, data_dir)}

  Staff token     {token}
  Staff sign-in   {notices}/staff/login
    user          {demo.get('user', '')}
    password      {demo.get('password', '')}

Publish a notice:
  curl -X POST {notices}/api/v1/communes/{insee}/notices \\
    -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
    -d '{{"category": "alerte", "title": "Route de Gray fermée", "body": "Chute d’arbre."}}'

Follow it by email (the confirmation to click, then the notices, go where Email says):
  curl -X POST {notices}/api/v1/subscriptions/email -H 'Content-Type: application/json' \\
    -d '{{"email": "vous@example.org",
         "follows": [{{"commune": "{insee}", "categories": ["alerte"]}}]}}'

Ctrl-C stops everything.
"""


def main() -> int:
    settings = CommonSettings()
    logging_setup.configure(settings.log_level, settings.log_format)
    data_dir = Path(os.environ.get("CRIEUR_DATA_DIR", "var")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CRIEUR_DATA_DIR=str(data_dir))
    server = None
    # Watched like a service (same backoff, same log lines), but not in `running`: it is
    # stopped last, once the services have drained.
    watched_server: list[Running] = []
    if not env.get("CRIEUR_NATS_URL"):
        server = NatsServer(data_dir / "nats", port=int(env.get("CRIEUR_NATS_PORT", "4222")))
        nats = Service("nats-server", "", "CRIEUR_NATS_PORT", server.port, health_path="",
                       spawn=server.spawn)
        watched_server.append(Running(nats, start(nats, env), time.monotonic()))
        env["CRIEUR_NATS_URL"] = server.wait_ready()
    running: list[Running] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    try:
        demo = run_setup(env, data_dir)
        # A setup step may hand settings to the services (CRIEUR_* keys of its JSON line).
        env |= {k: v for k, v in demo.items() if k.startswith("CRIEUR_")}
        urls = {}
        for service in SERVICES:
            if service.when and not env.get(service.when):
                continue
            if service.unless_set and env.get(service.unless_set):
                continue
            port = int(env.get(service.port_var, service.default_port))
            env[service.port_var] = str(port)
            running.append(Running(service, start(service, env), time.monotonic()))
            urls[service.name] = f"http://127.0.0.1:{port}"
        # A service that cannot even start is misconfigured: say so and stop, rather than
        # restarting it forever.
        for r in running:
            if not r.service.health_path:
                wait_listening(int(env[r.service.port_var]), r.process)
                continue
            wait_healthy(urls[r.service.name] + r.service.health_path, r.process)
        print(banner(urls, demo, env["CRIEUR_NATS_URL"], data_dir), flush=True)
        while not stopping:
            for r in [*watched_server, *running]:
                r.check(env, time.monotonic())
            time.sleep(0.2)
    except Exception as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        processes = [r.process for r in running]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if server is not None:
            server.stop()
        print("Crieur stopped.", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
