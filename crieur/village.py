"""`make run`: the whole village on one machine.

Starts a real nats-server (unless CRIEUR_NATS_URL names one), registers the demo commune
(Lavoncourt, 70299) and a staff token for it, starts every service, prints where to go,
and on Ctrl-C stops everything it started: services first (they drain), then the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from crieur.nats_server import NatsServer
from crieur.process import die_with_parent

DEMO_INSEE = "70299"
DEMO_NAME = "Lavoncourt"
DEMO_STAFF = "Secrétariat de mairie (démo)"

# (module, port variable, default port): every service the village runs.
SERVICES = (
    ("services.notices", "CRIEUR_HTTP_PORT", 8080),
    ("services.panel", "CRIEUR_PANEL_HTTP_PORT", 8081),
)


async def seed_demo(nats_url: str, data_dir: Path) -> str:
    """Register the demo commune and return a staff token for it, the same one every run."""
    from services.notices.store import NatsStore  # the demo data is the front door's

    store = await NatsStore.connect(nats_url, name="crieur-village")
    try:
        if await store.commune(DEMO_INSEE) is None:
            await store.add_commune(DEMO_INSEE, DEMO_NAME)
        token_file = data_dir / "demo-staff-token"
        if token_file.exists():
            token = token_file.read_text().strip()
            if await store.staff_for_token(token) is not None:
                return token
        _, token = await store.add_staff(DEMO_STAFF, (DEMO_INSEE,))
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        return token
    finally:
        await store.close()


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


def main() -> int:
    data_dir = Path(os.environ.get("CRIEUR_DATA_DIR", "var")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CRIEUR_DATA_DIR=str(data_dir))
    server = None
    if not env.get("CRIEUR_NATS_URL"):
        server = NatsServer(data_dir / "nats", port=int(env.get("CRIEUR_NATS_PORT", "4222")))
        env["CRIEUR_NATS_URL"] = server.start()
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    try:
        token = asyncio.run(seed_demo(env["CRIEUR_NATS_URL"], data_dir))
        urls = {}
        for module, port_var, default in SERVICES:
            port = int(env.get(port_var, default))
            env[port_var] = str(port)
            process = subprocess.Popen(
                [sys.executable, "-m", module], env=env,
                start_new_session=True, preexec_fn=die_with_parent,
            )
            processes.append((module, process))
            urls[module] = f"http://127.0.0.1:{port}"
        for module, process in processes:
            wait_healthy(urls[module] + "/healthz", process)
        notices, panel = urls["services.notices"], urls["services.panel"]
        print(
            f"""
Crieur is running — the village of {DEMO_NAME} ({DEMO_INSEE}).

  Notices API     {notices}/api/v1/communes/{DEMO_INSEE}/notices
  Atom feed       {notices}/api/v1/communes/{DEMO_INSEE}/feed.atom
  OpenAPI         {notices}/openapi.json  (docs: {notices}/docs)
  LED sign        {panel}/
  NATS            {env['CRIEUR_NATS_URL']}  (data in {data_dir})

  Staff token     {token}

Publish a notice:
  curl -X POST {notices}/api/v1/communes/{DEMO_INSEE}/notices \\
    -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
    -d '{{"category": "alerte", "title": "Route de Gray fermée", "body": "Chute d’arbre."}}'

Ctrl-C stops everything.
""",
            flush=True,
        )
        while not stopping:
            for module, process in processes:
                if process.poll() is not None:
                    print(f"{module} exited with {process.returncode}; stopping the village",
                          file=sys.stderr, flush=True)
                    stopping, code = True, 1
            time.sleep(0.2)
    except Exception as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        for _, process in processes:
            if process.poll() is None:
                process.terminate()
        for _, process in processes:
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
