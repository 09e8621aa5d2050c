"""Fixtures shared by every test: a real nats-server for the session, and helpers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from crieur.nats_server import NatsServer

CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A real nats-server with JetStream, random port, temporary store, for the whole session."""
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


def chromium_path() -> str:
    """Debian's chromium; under CI a missing browser is a failure, elsewhere a skip."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if CI:
            pytest.fail("chromium is not installed (apt-get install chromium); CI needs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


@pytest.fixture(scope="session")
def chromium() -> str:
    return chromium_path()


async def read_subject(js: JetStreamContext, subject: str, wait_s: float = 1.0) -> list[Msg]:
    """Every message JetStream holds on `subject`, oldest first ([] if none arrives)."""
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    found = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=wait_s)
            except nats.errors.TimeoutError:
                break
            found.append(msg)
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return found


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent

