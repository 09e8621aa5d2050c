"""The SMTP pool against the real SMTP stand-in: delivery, 4xx and 5xx, outages, auth, TLS."""

from __future__ import annotations

import asyncio
import email
import json
import subprocess
import sys
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest

from crieur.channel.errors import Transient
from crieur.nats_server import free_port
from crieur_dev.standins.smtp import ARRIVALS_FILE, FAULTS_FILE, OnIdle, SmtpStandin, messages
from services.email.sender import Bounced, SmtpConfig, SmtpPool
from services.email.settings import SmtpTls
from tests.integration.email.helpers import wait_for

pytestmark = [
    pytest.mark.integration,
    # The stand-in asks for a login over plain SMTP on purpose (the sender's auth path).
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

FROM = "avis@crieur.example.org"


def message(to: str, n: int = 0) -> bytes:
    return (f"From: {FROM}\r\nTo: {to}\r\nSubject: essai {n}\r\nMessage-ID: <m{n}@x>\r\n\r\n"
            f"Bonjour {n}\r\n").encode()


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def standin(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SmtpStandin]:
    """The stand-in offering PIPELINING, as real relays do, and not: both send paths."""
    server = SmtpStandin(tmp_path / "mail", pipelining=request.param).start()
    yield server
    server.stop()


def pool_for(server: SmtpStandin, size: int = 2, **kwargs: object) -> SmtpPool:
    return SmtpPool(SmtpConfig(host=server.host, port=server.port, pool=size, timeout_s=5,
                               **kwargs))  # type: ignore[arg-type]


async def test_messages_are_kept_as_files_through_persistent_connections(
        standin: SmtpStandin) -> None:
    pool = pool_for(standin, size=2)
    try:
        await asyncio.gather(*(pool.send(FROM, f"r{n}@example.org", message(f"r{n}@example.org", n))
                               for n in range(30)))
    finally:
        await pool.close()
    kept = standin.messages()
    assert len(kept) == 30
    first = email.message_from_bytes(kept[0].read_bytes(), policy=policy.default)
    assert first["Return-Path"] == f"<{FROM}>"
    assert first["Delivered-To"].startswith("r")
    assert sorted(email.message_from_bytes(p.read_bytes())["Subject"] for p in kept) == sorted(
        f"essai {n}" for n in range(30))


async def test_the_arrivals_file_names_each_message_kept_in_order(standin: SmtpStandin) -> None:
    """What `make bench` follows instead of listing the directory."""
    pool = pool_for(standin, size=2)
    try:
        await asyncio.gather(*(pool.send(FROM, f"r{n}@example.org", message(f"r{n}@example.org", n))
                               for n in range(12)))
        standin.answer(550, address="gone@example.org")
        with pytest.raises(Bounced):
            await pool.send(FROM, "gone@example.org", message("gone@example.org"))
    finally:
        await pool.close()
    names = (standin.mailbox.directory / ARRIVALS_FILE).read_text().splitlines()
    assert names == [p.stem for p in standin.messages()]  # a refused one is not there
    assert len(names) == 12


async def test_a_5xx_for_one_address_is_permanent_and_the_others_go(standin: SmtpStandin) -> None:
    standin.answer(550, address="gone@example.org")
    pool = pool_for(standin)
    try:
        with pytest.raises(Bounced) as refused:
            await pool.send(FROM, "gone@example.org", message("gone@example.org"))
        assert refused.value.code == 550
        assert "gone@" not in refused.value.reason, "the reason never carries the address"
        await pool.send(FROM, "here@example.org", message("here@example.org"))
    finally:
        await pool.close()
    assert [email.message_from_bytes(p.read_bytes())["To"] for p in standin.messages()] == [
        "here@example.org"]


async def test_a_4xx_for_a_while_is_transient_then_it_goes(standin: SmtpStandin) -> None:
    standin.answer(451, seconds=0.5)
    pool = pool_for(standin)
    try:
        with pytest.raises(Transient) as later:
            await pool.send(FROM, "a@example.org", message("a@example.org"))
        assert later.value.reason.startswith("smtp 451")
        await asyncio.sleep(0.6)
        await pool.send(FROM, "a@example.org", message("a@example.org"))
    finally:
        await pool.close()
    assert len(standin.messages()) == 1


async def test_a_server_that_is_away_is_transient_and_the_pool_recovers(tmp_path: Path) -> None:
    port = free_port()
    pool = SmtpPool(SmtpConfig(host="127.0.0.1", port=port, pool=1, timeout_s=2))
    with pytest.raises(Transient):
        await pool.send(FROM, "a@example.org", message("a@example.org"))
    server = SmtpStandin(tmp_path / "mail", port=port).start()
    try:
        await pool.send(FROM, "a@example.org", message("a@example.org"))
        server.stop()  # the relay goes away under a connection the pool holds
        with pytest.raises(Transient):
            await pool.send(FROM, "b@example.org", message("b@example.org"))
        server = SmtpStandin(tmp_path / "mail", port=port).start()
        await pool.send(FROM, "c@example.org", message("c@example.org"))
    finally:
        await pool.close()
        server.stop()
    assert len(messages(tmp_path / "mail")) == 2


async def test_authentication(tmp_path: Path) -> None:
    server = SmtpStandin(tmp_path / "mail", username="crieur", password="s3cret").start()
    try:
        good = pool_for(server, username="crieur", password="s3cret")
        await good.send(FROM, "a@example.org", message("a@example.org"))
        await good.close()
        bad = pool_for(server, username="crieur", password="wrong")
        with pytest.raises(Transient):  # our login: never the resident's bounce
            await bad.send(FROM, "a@example.org", message("a@example.org"))
        await bad.close()
    finally:
        server.stop()
    assert len(server.messages()) == 1


@pytest.mark.parametrize("mode", [SmtpTls.STARTTLS, SmtpTls.TLS])
async def test_tls_modes(tmp_path: Path, certificate: tuple[str, str], mode: SmtpTls) -> None:
    cert, key = certificate
    server = SmtpStandin(tmp_path / "mail", tls=mode.value, certfile=cert, keyfile=key,
                         username="crieur", password="s3cret").start()
    try:
        pool = pool_for(server, tls=mode, ca_file=cert, username="crieur", password="s3cret")
        await pool.send(FROM, "a@example.org", message("a@example.org"))
        await pool.close()
        untrusted = pool_for(server, tls=mode)  # the system CAs do not know this certificate
        with pytest.raises(Transient):
            await untrusted.send(FROM, "b@example.org", message("b@example.org"))
        await untrusted.close()
    finally:
        server.stop()
    assert len(server.messages()) == 1


@pytest.fixture
def standin_process(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port, mail = free_port(), tmp_path / "mail"
    process = subprocess.Popen([sys.executable, "-m", "crieur_dev.standins.smtp", "--dir", str(mail),
                                "--port", str(port)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert b"SMTP stand-in on" in process.stdout.readline()
    yield port, mail
    process.terminate()
    assert process.wait(10) == 0, "the stand-in stops cleanly on SIGTERM"


async def test_the_standin_as_a_process_obeys_a_faults_file(
        standin_process: tuple[int, Path]) -> None:
    port, mail = standin_process
    pool = SmtpPool(SmtpConfig(host="127.0.0.1", port=port, pool=1, timeout_s=5))
    try:
        await pool.send(FROM, "a@example.org", message("a@example.org"))
        (mail / FAULTS_FILE).write_text(json.dumps([{"code": 550, "address": "b@example.org"}]))
        with pytest.raises(Bounced):
            await pool.send(FROM, "b@example.org", message("b@example.org"))
        await pool.send(FROM, "c@example.org", message("c@example.org"))
    finally:
        await pool.close()
    assert len(messages(mail)) == 2


async def test_lines_starting_with_a_dot_arrive_intact(standin: SmtpStandin) -> None:
    body = b".\r\n..deux points\r\n.un point\r\nfin\r\n"
    pool = pool_for(standin, size=1)
    try:
        await pool.send(FROM, "a@example.org", message("a@example.org").replace(
            b"Bonjour 0\r\n", body))
    finally:
        await pool.close()
    (kept,) = standin.messages()
    assert kept.read_bytes().endswith(b"\r\n\r\n" + body)


class _Relay(asyncio.Protocol):
    """A relay that offers PIPELINING and records how the commands arrived."""

    chunks: list[bytes]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"220 relais\r\n")
        self.in_data = False

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        assert isinstance(self.transport, asyncio.WriteTransport)
        if self.in_data:
            if data.endswith(b"\r\n.\r\n"):
                self.in_data = False
                self.transport.write(b"250 2.0.0 ok\r\n")
            return
        for line in data.split(b"\r\n")[:-1]:
            if line.startswith(b"EHLO"):
                self.transport.write(b"250-relais\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n")
            elif line == b"DATA":
                self.in_data = True
                self.transport.write(b"354 go ahead\r\n")
            else:
                self.transport.write(b"250 ok\r\n")


async def test_with_pipelining_the_envelope_leaves_in_one_write() -> None:
    chunks: list[bytes] = []
    relay = type("Relay", (_Relay,), {"chunks": chunks})
    server = await asyncio.get_running_loop().create_server(relay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = SmtpPool(SmtpConfig(host="127.0.0.1", port=port, pool=1, timeout_s=5))
    try:
        for n in range(2):
            await pool.send(FROM, f"r{n}@example.org", message(f"r{n}@example.org", n))
    finally:
        await pool.close()
        server.close()
    envelopes = [c for c in chunks if c.startswith(b"MAIL FROM")]
    assert envelopes == [
        f"MAIL FROM:<{FROM}> SIZE={len(message(f'r{n}@example.org', n))}\r\n"
        f"RCPT TO:<r{n}@example.org>\r\nDATA\r\n".encode() for n in range(2)]


# -- a relay that closes connections (issue 23) ---------------------------------------------

IDLE_S = 2.0


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.mark.parametrize("on_idle", ["close", "421", "reset"])
async def test_a_connection_the_relay_dropped_when_idle_is_replaced_by_the_next_send(
        tmp_path: Path, pipelining: bool, on_idle: OnIdle) -> None:
    """Issue 23: after an idle timeout, the next send went nowhere, for good."""
    server = SmtpStandin(tmp_path / "mail", pipelining=pipelining, idle_timeout_s=IDLE_S,
                         on_idle=on_idle).start()
    pool = SmtpPool(SmtpConfig(host=server.host, port=server.port, pool=1, timeout_s=5))
    try:
        await pool.send(FROM, "a@example.org", message("a@example.org", 1))
        for n in (2, 3):  # and again: the replacement is dropped in turn
            await asyncio.sleep(IDLE_S * 2)  # the relay has closed the connection by now
            async with asyncio.timeout(15):
                await pool.send(FROM, "a@example.org", message("a@example.org", n))
        assert pool.not_ready() == []
    finally:
        await pool.close()
        server.stop()
    assert [email.message_from_bytes(p.read_bytes())["Subject"] for p in server.messages()] == [
        "essai 1", "essai 2", "essai 3"]


async def test_a_421_that_closes_a_connection_in_use_is_replaced_in_the_same_send(
        standin: SmtpStandin) -> None:
    pool = pool_for(standin, size=1)
    try:
        await pool.send(FROM, "a@example.org", message("a@example.org", 1))
        standin.answer(421, times=1)  # and the stand-in hangs up, as RFC 5321 says
        async with asyncio.timeout(15):
            await pool.send(FROM, "a@example.org", message("a@example.org", 2))
            await pool.send(FROM, "a@example.org", message("a@example.org", 3))
    finally:
        await pool.close()
    assert len(standin.messages()) == 3


async def test_a_421_on_a_new_connection_is_transient_and_the_next_send_reconnects(
        standin: SmtpStandin) -> None:
    pool = pool_for(standin, size=1)
    standin.answer(421, times=1)
    try:
        with pytest.raises(Transient) as later:
            await pool.send(FROM, "a@example.org", message("a@example.org", 1))
        assert later.value.reason.startswith("smtp 421")
        async with asyncio.timeout(15):
            await pool.send(FROM, "a@example.org", message("a@example.org", 2))
    finally:
        await pool.close()
    assert len(standin.messages()) == 1


class _Silent(asyncio.Protocol):
    """A relay that greets, answers EHLO (with or without PIPELINING), then says nothing."""

    pipelining = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport
        transport.write(b"220 relais\r\n")

    def data_received(self, data: bytes) -> None:
        if data.startswith(b"EHLO"):
            offer = b"250-PIPELINING\r\n" if self.pipelining else b""
            self.transport.write(b"250-relais\r\n" + offer + b"250 SIZE 1000000\r\n")


async def test_a_relay_that_stalls_fails_the_send_as_transient_within_the_timeout(
        pipelining: bool) -> None:
    relay = type("Relay", (_Silent,), {"pipelining": pipelining})
    server = await asyncio.get_running_loop().create_server(relay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = SmtpPool(SmtpConfig(host="127.0.0.1", port=port, pool=1, timeout_s=1))
    try:
        for _ in range(2):  # the stalled connection is not reused, nor any lock held
            async with asyncio.timeout(10):
                with pytest.raises(Transient):
                    await pool.send(FROM, "a@example.org", message("a@example.org"))
        assert any("cannot deliver" in reason for reason in pool.not_ready())
    finally:
        await pool.close()
        server.close()


async def test_readiness_says_why_the_pool_cannot_deliver_then_clears(tmp_path: Path) -> None:
    port = free_port()
    pool = SmtpPool(SmtpConfig(host="127.0.0.1", port=port, pool=1, timeout_s=2))
    assert pool.not_ready() == []
    with pytest.raises(Transient):
        await pool.send(FROM, "a@example.org", message("a@example.org"))
    (reason,) = pool.not_ready()
    assert reason.startswith("smtp: cannot deliver") and "SMTPConnectError" in reason
    server = SmtpStandin(tmp_path / "mail", port=port).start()
    try:
        # Nothing to send: the readiness check probes the relay itself.
        await wait_for(lambda: not pool.not_ready(), 15, "the relay probed")
    finally:
        await pool.close()
        server.stop()
