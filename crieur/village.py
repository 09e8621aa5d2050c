"""`make run`: the whole village on one machine.

Starts a real nats-server (unless CRIEUR_NATS_URL names one), runs the setup steps (the
demo commune and its staff token), starts every service of `SERVICES`, prints where to
go, and on Ctrl-C stops everything it started: services first (they drain), then the server.
This module imports no service: services are named by module, and run as processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from crieur.nats_server import NatsServer
from crieur.process import die_with_parent


@dataclass(frozen=True)
class Service:
    """One process of the village. A new channel joins it by adding a line to `SERVICES`."""

    name: str
    module: str
    port_var: str
    default_port: int
    health_path: str = "/healthz"
    # What the start-up message calls its page, if it has one worth opening.
    label: str = ""
    # Started instead of `python -m module` (a stand-in of a provider, for instance).
    command: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        return list(self.command) if self.command else [sys.executable, "-m", self.module]


SERVICES: tuple[Service, ...] = (
    Service("notices", "services.notices", "CRIEUR_HTTP_PORT", 8080),
    Service("panel", "services.panel", "CRIEUR_PANEL_HTTP_PORT", 8081, label="LED sign"),
)

# Run once, in order, before the services start; the last JSON line each prints is kept
# (the demo step prints the demo commune and its staff token).
SETUP: tuple[tuple[str, ...], ...] = (
    (sys.executable, "-m", "services.notices.demo"),
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


def start(service: Service, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(service.argv(), env=env, start_new_session=True,
                            preexec_fn=die_with_parent)


def banner(urls: dict[str, str], demo: dict[str, str], nats_url: str, data_dir: Path) -> str:
    notices, insee, token = urls["notices"], demo["insee"], demo["token"]
    others = "".join(f"  {s.label:<15} {urls[s.name]}/\n" for s in SERVICES if s.label)
    return f"""
Crieur is running — the village of {demo['name']} ({insee}).

  Notices API     {notices}/api/v1/communes/{insee}/notices
  Atom feed       {notices}/api/v1/communes/{insee}/feed.atom
  OpenAPI         {notices}/openapi.json  (docs: {notices}/docs)
{others}  NATS            {nats_url}  (data in {data_dir})

  Staff token     {token}

Publish a notice:
  curl -X POST {notices}/api/v1/communes/{insee}/notices \\
    -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
    -d '{{"category": "alerte", "title": "Route de Gray fermée", "body": "Chute d’arbre."}}'

Ctrl-C stops everything.
"""


def main() -> int:
    data_dir = Path(os.environ.get("CRIEUR_DATA_DIR", "var")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CRIEUR_DATA_DIR=str(data_dir))
    server = None
    if not env.get("CRIEUR_NATS_URL"):
        server = NatsServer(data_dir / "nats", port=int(env.get("CRIEUR_NATS_PORT", "4222")))
        env["CRIEUR_NATS_URL"] = server.start()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    try:
        demo = run_setup(env, data_dir)
        urls = {}
        for service in SERVICES:
            port = int(env.get(service.port_var, service.default_port))
            env[service.port_var] = str(port)
            processes[service.name] = start(service, env)
            urls[service.name] = f"http://127.0.0.1:{port}"
        for service in SERVICES:
            wait_healthy(urls[service.name] + service.health_path, processes[service.name])
        print(banner(urls, demo, env["CRIEUR_NATS_URL"], data_dir), flush=True)
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(f"services.{name} exited with {process.returncode}; stopping the village",
                          file=sys.stderr, flush=True)
                    stopping, code = True, 1
            time.sleep(0.2)
    except Exception as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
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
