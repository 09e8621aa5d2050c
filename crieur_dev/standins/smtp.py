"""A real SMTP server (aiosmtpd) on loopback that keeps every message it accepts as a file.

`make run` and the tests send to it through the same code that sends to a real relay.
It can be told to answer 4xx or 5xx, for a while, a number of times, or for one
address, so retries and bounces are proven against a real SMTP conversation:

- in-process: `SmtpStandin(directory).start()`, then `.answer(451, seconds=2)`;
- as a process: `python -m crieur_dev.standins.smtp --dir var/mail --port 2525`, told by
  writing a JSON list of faults to `<dir>/.faults.json` (re-read when it changes).

A 421 answer closes the connection, as RFC 5321 says it does and relays do. Like Postfix
(`smtpd_timeout`), it closes a connection idle for 300 s (`idle_timeout_s`, `--idle-timeout`
or CRIEUR_SMTP_IDLE_TIMEOUT_S); `on_idle` says how: a plain close, "421" first (Postfix),
or a reset.

Each message is written to `<dir>/<arrival ns>-<n>.eml` (temp file then rename, so a
reader never sees half a message), with `Return-Path` and `Delivered-To` lines on top,
as a mailbox delivery does. Its name is then appended to `<dir>/.arrivals`, one line per
message in the order they were kept: a reader follows new mail by reading that file's new
lines, where listing the directory reads every file name (50 ms of CPU at 100,000, which
`make bench` polling every second took from the village it measured).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

# aiosmtpd logs every SMTP command at INFO, "RCPT TO:<address>" included: residents'
# addresses stay out of the logs, even a stand-in's.
logging.getLogger("mail.log").setLevel(logging.WARNING)

FAULTS_FILE = ".faults.json"
ARRIVALS_FILE = ".arrivals"
# Named, so aiosmtpd does not ask the resolver for this machine's name at every connection.
SERVER_NAME = "crieur-standin.localhost"
IDLE_TIMEOUT_S = 300.0  # Postfix's smtpd_timeout

OnIdle = Literal["close", "421", "reset"]


@dataclass
class Fault:
    """Answer `code` to RCPT (for one address, or all) until `until` or `times` runs out."""

    code: int
    text: str = ""
    address: str | None = None
    until: float | None = None  # time.monotonic()
    times: int | None = None

    def applies(self, address: str, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.times is not None and self.times <= 0:
            return False
        return self.address is None or self.address.lower() == address.lower()

    @property
    def reply(self) -> str:
        text = self.text or ("Try again later" if self.code < 500 else "Mailbox unavailable")
        enhanced = "4.3.0" if self.code < 500 else "5.1.1"
        return f"{self.code} {enhanced} {text}"


@dataclass
class Mailbox:
    """What the server keeps: the directory, the faults in force, and counters."""

    directory: Path
    faults: list[Fault] = field(default_factory=list)
    accepted: int = 0
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _faults_mtime: float = 0.0
    _arrivals: BinaryIO = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Unbuffered: each line is in the file as soon as its message is.
        self._arrivals = (self.directory / ARRIVALS_FILE).open("ab", buffering=0)

    def refusal(self, address: str) -> str | None:
        self._reload_faults()
        now = time.monotonic()
        with self._lock:
            for fault in self.faults:
                if fault.applies(address, now):
                    if fault.times is not None:
                        fault.times -= 1
                    self.refused += 1
                    return fault.reply
        return None

    def keep(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> Path:
        top = f"Return-Path: <{mail_from}>\r\nDelivered-To: {', '.join(rcpt_tos)}\r\n".encode()
        name = f"{time.time_ns()}-{next(self._seq)}"
        tmp = self.directory / f".{name}.tmp"
        path = self.directory / f"{name}.eml"
        with tmp.open("wb") as out:
            out.write(top + content)
        os.replace(tmp, path)
        with self._lock:
            self.accepted += 1
            self._arrivals.write(f"{name}\n".encode())
        return path

    def close(self) -> None:
        self._arrivals.close()

    def _reload_faults(self) -> None:
        # Process mode: faults come from a file, so a test in another process can steer us.
        path = self.directory / FAULTS_FILE
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime == self._faults_mtime:
            return
        self._faults_mtime = mtime
        with contextlib.suppress(ValueError, OSError):
            self.set_faults(faults_from_json(path.read_text()))

    def set_faults(self, faults: list[Fault]) -> None:
        with self._lock:
            self.faults = faults


def faults_from_json(text: str) -> list[Fault]:
    """E.g. `[{"code": 451, "seconds": 5}, {"code": 550, "address": "a@b.fr"}]`.

    Keys: code, text, address (one recipient), seconds (from now), times (that many answers).
    """
    now = time.monotonic()
    faults = []
    for item in json.loads(text):
        seconds = item.get("seconds")
        faults.append(Fault(code=int(item["code"]), text=str(item.get("text", "")),
                            address=item.get("address"), times=item.get("times"),
                            until=now + float(seconds) if seconds is not None else None))
    return faults


class _Handler:
    def __init__(self, mailbox: Mailbox, pipelining: bool = True) -> None:
        self.mailbox = mailbox
        self.pipelining = pipelining

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        # Real relays (Postfix, Exim, the mail providers) offer PIPELINING (RFC 2920), and
        # aiosmtpd handles pipelined commands in order (it reads them line by line) but does
        # not say so: we do, so the sender's pipelined path runs here as against a relay.
        session.host_name = hostname  # what aiosmtpd does itself when no hook is set
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        refusal = self.mailbox.refusal(address)
        if refusal is not None:
            if refusal.startswith("421"):
                # "Closing transmission channel": the reply is written before this runs.
                asyncio.get_running_loop().call_soon(_close, server.transport)
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.mailbox.keep(str(envelope.mail_from), list(envelope.rcpt_tos), content)
        return "250 2.0.0 Message accepted"


def _close(transport: asyncio.BaseTransport | None) -> None:
    if transport is not None:
        transport.close()


class _Smtp(SMTP):
    """aiosmtpd's server, with what it does to an idle connection chosen."""

    def __init__(self, *args: Any, on_idle: OnIdle = "close", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_idle = on_idle

    def _timeout_cb(self) -> None:
        transport = self.transport
        if transport is None:
            return
        assert isinstance(transport, asyncio.WriteTransport)
        if self.on_idle == "421":
            transport.write(f"421 4.4.2 {SERVER_NAME} Error: timeout exceeded\r\n".encode())
        elif self.on_idle == "reset":
            sock = transport.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close() sends a RST, not a FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
            return
        transport.close()


class _Controller(Controller):
    def __init__(self, *args: Any, on_idle: OnIdle = "close", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_idle: OnIdle = on_idle

    def factory(self) -> SMTP:
        return _Smtp(self.handler, on_idle=self.on_idle, **self.SMTP_kwargs)


class _Authenticator:
    def __init__(self, username: str, password: str) -> None:
        self.expected = (username.encode(), password.encode())

    def __call__(self, server: SMTP, session: Session, envelope: Envelope,
                 mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login, auth_data.password) == self.expected
        return AuthResult(success=ok)


def smtp_kwargs(username: str | None, password: str | None,
                starttls: ssl.SSLContext | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"enable_SMTPUTF8": True, "data_size_limit": 10_000_000}
    if username is not None:
        kwargs.update(authenticator=_Authenticator(username, password or ""),
                      auth_required=True, auth_require_tls=starttls is not None)
    if starttls is not None:
        kwargs.update(tls_context=starttls, require_starttls=True)
    return kwargs


def server_tls(certfile: str, keyfile: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


class SmtpStandin:
    """In-process: the server runs on its own thread and loop, so it never slows the caller's."""

    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int = 0,
                 username: str | None = None, password: str | None = None,
                 tls: str = "none", certfile: str | None = None,
                 keyfile: str | None = None, pipelining: bool = True,
                 idle_timeout_s: float = IDLE_TIMEOUT_S, on_idle: OnIdle = "close") -> None:
        from crieur.nats_server import free_port

        self.mailbox = Mailbox(Path(directory))
        self.host = host
        self.port = port or free_port(host)
        context = server_tls(certfile, keyfile) if certfile and keyfile else None
        self._controller = _Controller(
            _Handler(self.mailbox, pipelining), hostname=host, port=self.port,
            ssl_context=context if tls == "tls" else None, server_hostname=SERVER_NAME,
            timeout=idle_timeout_s, on_idle=on_idle,
            **smtp_kwargs(username, password, context if tls == "starttls" else None),
        )

    def start(self) -> SmtpStandin:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
        self.mailbox.close()

    def answer(self, code: int, text: str = "", *, address: str | None = None,
               seconds: float | None = None, times: int | None = None) -> None:
        """From now on, answer `code` to RCPT (for `address` only, if given)."""
        fault = Fault(code, text, address,
                      time.monotonic() + seconds if seconds is not None else None, times)
        self.mailbox.set_faults([*self.mailbox.faults, fault])

    def heal(self) -> None:
        self.mailbox.set_faults([])

    def messages(self) -> list[Path]:
        """Every message kept so far, oldest first."""
        return messages(self.mailbox.directory)


def messages(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.eml"), key=lambda p: tuple(map(int, p.stem.split("-"))))


async def serve(args: argparse.Namespace) -> None:
    mailbox = Mailbox(Path(args.dir))
    context = server_tls(args.certfile, args.keyfile) if args.certfile else None
    kwargs = smtp_kwargs(args.username, args.password,
                         context if args.tls == "starttls" else None)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Smtp(_Handler(mailbox, not args.no_pipelining), loop=loop,
                      hostname=SERVER_NAME, timeout=args.idle_timeout, on_idle=args.on_idle,
                      **kwargs),
        args.host, args.port, ssl=context if args.tls == "tls" else None)
    where = Path(args.dir).resolve()  # noqa: ASYNC240 - once, at start
    print(f"SMTP stand-in on {args.host}:{args.port}, messages in {where}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()
    mailbox.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Defaults from the village's variables, so `make run` starts it as `python -m ...`.
    data_dir = os.environ.get("CRIEUR_DATA_DIR", "var")
    parser.add_argument("--dir", default=str(Path(data_dir) / "mail"),
                        help="where messages are kept (default <CRIEUR_DATA_DIR>/mail)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CRIEUR_SMTP_PORT", 2525)))
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--tls", choices=("none", "starttls", "tls"), default="none")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    parser.add_argument("--no-pipelining", action="store_true",
                        help="do not offer PIPELINING (a relay that does not)")
    parser.add_argument("--idle-timeout", type=float, default=float(
        os.environ.get("CRIEUR_SMTP_IDLE_TIMEOUT_S", IDLE_TIMEOUT_S)),
        help="close a connection idle this long, in seconds (default "
             "CRIEUR_SMTP_IDLE_TIMEOUT_S, else 300 as Postfix's smtpd_timeout)")
    parser.add_argument("--on-idle", choices=("close", "421", "reset"), default="close",
                        help="how an idle connection ends: a close, 421 then a close, a reset")
    args = parser.parse_args(argv)
    if args.tls != "none" and not (args.certfile and args.keyfile):
        parser.error("--tls needs --certfile and --keyfile")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
