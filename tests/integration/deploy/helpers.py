"""The production nats-server configuration of deploy/ started for real, with a test CA."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trustme

from crieur.nats_server import binary, free_port
from crieur.process import die_with_parent
from schemas.deliveries import Channel
from tests.helpers import repo_root

DEPLOY = repo_root() / "deploy"
# Every channel has a user named after it (its manifest's nats_user): a new channel is in
# the production config the tests start without a line here.
USERS = ("provision", "operator", "notices", "panel",
         *(str(c) for c in Channel if c is not Channel.PANEL))


def inbox(user: str) -> str:
    """The reply prefix each user may read, and only it (deploy/nats/auth.conf)."""
    return f"_INBOX_{user}"


def password(user: str) -> str:
    return f"test-{user}-secret"


@dataclass
class Pki:
    """A CA made for the test, and the server's certificate for 127.0.0.1 and localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def make(cls, folder: Path) -> Pki:
        folder.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        pki = cls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
        ca.cert_pem.write_to_path(str(pki.ca_file))
        cert.private_key_pem.write_to_path(str(pki.key_file))
        for i, blob in enumerate(cert.cert_chain_pems):
            blob.write_to_path(str(pki.cert_file), append=i > 0)
        return pki


@dataclass
class ConfiguredServer:
    """One nats-server started from a deploy/ configuration file, its settings from env."""

    config: Path
    store_dir: Path
    pki: Pki
    name: str = "crieur-test"
    port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.store_dir.parent / f"{self.name}.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env |= {
            "NATS_SERVER_NAME": self.name,
            "NATS_LISTEN": f"127.0.0.1:{self.port}",
            "NATS_MONITOR": f"127.0.0.1:{self.monitor_port}",
            "NATS_STORE_DIR": str(self.store_dir),
            "NATS_TLS_CERT": str(self.pki.cert_file),
            "NATS_TLS_KEY": str(self.pki.key_file),
            "NATS_TLS_CA": str(self.pki.ca_file),
        }
        env |= {f"NATS_PASSWORD_{u.upper()}": password(u) for u in USERS}
        return env | self.extra_env

    def url(self, user: str) -> str:
        return f"tls://{user}:{password(user)}@127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> ConfiguredServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary(), "-c", str(self.config), "-l", str(self.log_file)],
            env=self.env(), start_new_session=True, preexec_fn=die_with_parent,
        )
        if wait:
            self.wait_listening()
        return self

    def wait_listening(self, timeout: float = 30.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server not listening: {self.log_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, sig)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def violations(self, user: str | None = None) -> list[str]:
        """The permission violations the server logged (of `user`, if given)."""
        lines = [line for line in self.log_text().splitlines() if "Violation" in line]
        return [line for line in lines if user is None or f'user:{user}"' in line]


def service_env(server: ConfiguredServer, user: str, data_dir: Path) -> dict[str, str]:
    """A service's environment in production: its own user, TLS against the test CA, and
    its NATS URL (with its password) as a credential file, as systemd's LoadCredential=
    and compose's secrets give it (deploy/README.md, "Secrets"), not a variable."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CRIEUR_") and k != "CREDENTIALS_DIRECTORY"}
    credentials = data_dir / "credentials" / user
    credentials.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = credentials / "CRIEUR_NATS_URL"
    secret.write_text(server.url(user) + "\n")
    secret.chmod(0o600)
    return env | {
        "CREDENTIALS_DIRECTORY": str(credentials),
        "CRIEUR_ENSURE_STREAMS": "false",
        "CRIEUR_NATS_INBOX_PREFIX": inbox(user),
        # ssl.create_default_context(), which nats-py uses for tls://, trusts this CA.
        "SSL_CERT_FILE": str(server.pki.ca_file),
        "CRIEUR_DATA_DIR": str(data_dir),
        "CRIEUR_LOG_FORMAT": "json",
    }


@dataclass
class Process:
    process: subprocess.Popen[bytes]
    log_file: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")


def start_process(argv: list[str], env: dict[str, str], log_file: Path) -> Process:
    with log_file.open("ab") as out:
        process = subprocess.Popen(argv, env=env, cwd=repo_root(), stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=die_with_parent)
    return Process(process, log_file)


def start_service(module: str, env: dict[str, str], log_file: Path, health_url: str,
                  timeout: float = 90.0) -> Process:
    """`python -m module`, waited for until `health_url` answers 200."""
    started = start_process([sys.executable, "-m", module], env, log_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.process.poll() is not None:
            raise RuntimeError(f"{module} exited: {started.output()[-3000:]}")
        try:
            if httpx.get(health_url, timeout=2).status_code == 200:
                return started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    started.stop()
    raise RuntimeError(f"{module} not healthy: {started.output()[-3000:]}")


async def publish_alert(http: httpx.AsyncClient, api: str, commune: str, token: str,
                        key: str) -> str:
    """A storm alert published through the front door as staff do (201); its id."""
    answer = await http.post(
        f"{api}/api/v1/communes/{commune}/notices",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        json={"category": "alerte", "title": "Tempête : restez chez vous",
              "body": "Vents à 120 km/h attendus cette nuit."})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


@dataclass(frozen=True)
class FrontAndSign:
    """The front door and the sign running as their own users: where they answer."""

    api: str
    sign: str
    notices_env: dict[str, str]


@contextmanager
def front_door_and_sign(server: ConfiguredServer, commune: str,
                        folder: Path) -> Iterator[FrontAndSign]:
    """Runs the front door and `commune`'s sign as in production for the block; after it,
    neither may have met a Permissions Violation (server log or their own)."""
    http_port, panel_port = free_port(), free_port()
    notices_env = service_env(server, "notices", folder) | {"CRIEUR_HTTP_PORT": str(http_port)}
    panel_env = service_env(server, "panel", folder) | {
        "CRIEUR_PANEL_HTTP_PORT": str(panel_port), "CRIEUR_PANEL_COMMUNE": commune,
        "CRIEUR_PANEL_REPORT_INTERVAL_S": "1", "CRIEUR_PANEL_BLANK_HOURS": ""}
    api, sign = f"http://127.0.0.1:{http_port}", f"http://127.0.0.1:{panel_port}"
    running: list[Process] = []
    already = {user: server.violations(user) for user in ("notices", "panel")}
    try:
        running.append(start_service("services.notices", notices_env,
                                     folder / "notices.log", api + "/healthz"))
        running.append(start_service("services.panel", panel_env,
                                     folder / "panel.log", sign + "/healthz"))
        yield FrontAndSign(api, sign, notices_env)
    finally:
        for process in running:
            process.stop()
    for user in ("notices", "panel"):
        assert server.violations(user) == already[user], server.violations(user)
    for process in running:
        assert "Permissions Violation" not in process.output()


def crieur(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The `crieur` command, as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "services.notices.cli", *args], env=env,
                          cwd=repo_root(), capture_output=True, text=True, timeout=120,
                          check=False)
