"""The village started the way `make run` starts it, in a temporary folder, on free ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


def start_village(data_dir: Path, env_extra: dict[str, str] | None = None) -> Village:
    ports = {"CRIEUR_NATS_PORT": free_port(), "CRIEUR_HTTP_PORT": free_port(),
             "CRIEUR_PANEL_HTTP_PORT": free_port(),
             "CRIEUR_SMTP_PORT": free_port(), "CRIEUR_EMAIL_HTTP_PORT": free_port()}
    ports |= {"CRIEUR_FCM_STANDIN_PORT": free_port(), "CRIEUR_PUSH_HTTP_PORT": free_port(),
              "CRIEUR_DEMO_PHONE_PORT": free_port()}
    ports |= {"CRIEUR_SMS_HTTP_PORT": free_port(), "CRIEUR_SMS_STANDIN_PORT": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
    env |= {k: str(v) for k, v in ports.items()}
    env |= {"CRIEUR_DATA_DIR": str(data_dir), "CRIEUR_LOG_FORMAT": "json"}
    env |= env_extra or {}
    data_dir.mkdir(parents=True, exist_ok=True)
    output = data_dir / "village.log"
    already = output.stat().st_size if output.exists() else 0  # a restart appends
    with output.open("a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "crieur.village"], cwd=repo_root(), env=env,
            stdout=log, stderr=subprocess.STDOUT, text=True,
        )
    api = f"http://127.0.0.1:{ports['CRIEUR_HTTP_PORT']}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
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


# Debian's chromium, headless and quiet: nothing reaches the network but the village.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
