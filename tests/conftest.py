"""Fixtures shared by every test: a real nats-server for the session, chromium, a TLS
certificate.

Helpers live in tests/helpers.py; the names tests imported from here still work."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from crieur.nats_server import NatsServer

# Re-exported: tests of other branches import these from here (a conftest is allowed).
from tests.helpers import read_subject, repo_root

__all__ = ["read_subject", "repo_root"]

CI = os.environ.get("CI") == "true"


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (`make test`): a module's tests on one worker, as `--dist loadfile`
    would, so a module's fixture (an e2e module's village) starts once; and every chaos
    scenario on one worker, where their session village starts once. (Its `loadgroup` needs
    a marker it cannot add to a test's id under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            return "tests/chaos" if module.startswith("tests/chaos/") else module

    return ByModule(config, log)


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


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key (paths), made by openssl: for a
    test server speaking TLS, and a client told to trust it."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key
