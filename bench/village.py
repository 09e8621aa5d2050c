"""The whole village as `make run` starts it (crieur.village.SERVICES), on free ports.

Each service is its own process, started here rather than by the launcher so the bench knows
every pid (CPU and peak RSS per service). Differences from `make run`, all for measuring:
the SMS stand-in posts no delivery receipts back (they would load the front door and the SMS
service with work the raw baseline does not have), SMS go out at the highest rate the
setting allows (CRIEUR_SMS_RATE=1000; a real provider's quota is far lower), and logs are
at WARNING.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from crieur import village
from crieur.nats_server import NatsServer, free_port
from crieur.process import die_with_parent

EMAIL_SECRET = "bench-secret-key-bench-secret-key-bench-secret-key"
SMS_SECRET = "bench-sms-secret-bench-sms-secret-bench-sms-secret"


@dataclass
class BenchVillage:
    data_dir: Path
    server: NatsServer
    env: dict[str, str]
    token: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def nats_url(self) -> str:
        return self.server.url

    def url(self, service: str) -> str:
        var = next(s.port_var for s in village.SERVICES if s.name == service)
        return f"http://127.0.0.1:{self.env[var]}"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def standins_dir(self) -> Path:
        return self.data_dir / "standins"

    def pids(self) -> dict[str, int]:
        found = {name: p.pid for name, p in self.processes.items()}
        assert self.server.process is not None
        return found | {"nats-server": self.server.process.pid}

    def dead(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.poll() is not None]

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log_file in self.logs:
            log_file.close()
        self.server.stop()


def start(data_dir: Path, *, smtp_pool: int, sms_concurrency: int,
          webpush_concurrency: int = 32,
          extra_env: dict[str, str] | None = None) -> BenchVillage:
    """`extra_env`: CRIEUR_* settings over the bench's own (a phase's SMS quota...)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server = NatsServer(data_dir / "nats")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
    env |= {s.port_var: str(free_port()) for s in village.SERVICES}
    env |= {
        "CRIEUR_NATS_URL": server.start(), "CRIEUR_DATA_DIR": str(data_dir),
        "CRIEUR_LOG_LEVEL": "WARNING", "CRIEUR_LOG_FORMAT": "json",
        "CRIEUR_EMAIL_SECRET_KEY": EMAIL_SECRET, "CRIEUR_SMS_SECRET_KEY": SMS_SECRET,
        "CRIEUR_SMTP_POOL": str(smtp_pool), "CRIEUR_SMS_CONCURRENCY": str(sms_concurrency),
        "CRIEUR_SMS_RATE": "1000", "CRIEUR_WEBPUSH_CONCURRENCY": str(webpush_concurrency),
    }
    env |= extra_env or {}
    env["CRIEUR_PUBLIC_URL"] = f"http://127.0.0.1:{env['CRIEUR_HTTP_PORT']}"
    bench = BenchVillage(data_dir, server, env, token="")
    try:
        said = village.run_setup(env, data_dir)
        env |= {k: v for k, v in said.items() if k.startswith("CRIEUR_")}
        bench.token = said["token"]
        for service in village.SERVICES:
            if service.when and not env.get(service.when):
                continue
            argv = service.argv()
            if service.name == "sms-standin":
                argv += ["--no-receipts"]
            log_file = (data_dir / f"{service.name}.log").open("wb")
            bench.logs.append(log_file)
            bench.processes[service.name] = subprocess.Popen(
                argv, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent)
        for service in village.SERVICES:
            process = bench.processes.get(service.name)
            if process is None:
                continue
            if service.health_path:
                village.wait_healthy(bench.url(service.name) + service.health_path, process, 120)
            else:
                village.wait_listening(int(env[service.port_var]), process, 120)
    except BaseException:
        bench.stop()
        raise
    return bench
