"""The SMTP side: a pool of persistent aiosmtplib connections, and what each failure means.

RFC 5321: a 4xx reply or a dropped connection is worth trying again later (Transient);
a 5xx to the recipient or the message is final for this address (Permanent -> bounce).
A 5xx to our own sender address or to our login is the operator's problem, not the
resident's: it is Transient, so no address is marked bounced for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import cast

import aiosmtplib
import structlog

from crieur.channel.errors import Permanent, Transient
from services.email.settings import EmailSettings, SmtpTls

log = structlog.get_logger("crieur.email.sender")


class Bounced(Permanent):
    """The relay refused this recipient or message for good (SMTP 5xx)."""

    def __init__(self, reason: str, code: int) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    tls: SmtpTls = SmtpTls.NONE
    username: str | None = None
    password: str | None = None
    verify: bool = True
    ca_file: str | None = None
    timeout_s: float = 30.0
    pool: int = 4
    local_hostname: str = "localhost"

    @classmethod
    def from_settings(cls, s: EmailSettings) -> SmtpConfig:
        return cls(host=s.smtp_host, port=s.smtp_port, tls=s.smtp_tls,
                   username=s.smtp_username, password=s.smtp_password,
                   verify=s.smtp_tls_verify,
                   ca_file=str(s.smtp_ca_file) if s.smtp_ca_file else None,
                   timeout_s=s.smtp_timeout_s, pool=s.smtp_pool,
                   local_hostname=s.smtp_from.rpartition("@")[2])

    def client(self) -> aiosmtplib.SMTP:
        context = None
        if self.tls != SmtpTls.NONE:
            context = ssl.create_default_context(cafile=self.ca_file)
            if not self.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return aiosmtplib.SMTP(
            hostname=self.host, port=self.port, timeout=self.timeout_s,
            use_tls=self.tls == SmtpTls.TLS, start_tls=self.tls == SmtpTls.STARTTLS,
            tls_context=context, username=self.username, password=self.password,
            local_hostname=self.local_hostname,
        )


def _reply(error: aiosmtplib.SMTPResponseException) -> str:
    # The relay's words can echo the address back: keep the code and the enhanced status.
    words = error.message.split()
    enhanced = words[0] if words and words[0][:1].isdigit() else ""
    return f"smtp {error.code} {enhanced}".strip()


def classify(error: Exception) -> Transient | Permanent:
    """An aiosmtplib (or socket) error -> the kit's failure kinds."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
        first = error.recipients[0]
        return classify(first)
    if isinstance(error, (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPAuthenticationError,
                          aiosmtplib.SMTPHeloError)):
        return Transient(f"{_reply(error)} (relay refused our sender or login)")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        if 500 <= error.code < 600:
            return Bounced(_reply(error), error.code)
        return Transient(_reply(error))
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return Transient(f"smtp not supported: {str(error)[:100]}")
    if isinstance(error, (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError)):
        return Transient(f"smtp connection: {type(error).__name__}")
    return Transient(f"smtp: {type(error).__name__}")


class _Connection:
    """One pooled connection. aiosmtplib opens it (greeting, EHLO, STARTTLS, AUTH); when the
    relay offers PIPELINING, the mail transactions then go through `_Pipelined`, on the same
    transport, and otherwise through aiosmtplib's commands.

    aiosmtplib holds a lock from `connect()` until `close()`, and learns of a lost connection
    only through its own protocol, which `_Pipelined` replaces: so whatever ends a connection
    (the relay's idle timeout, a 421, a reset) closes the client here, and every connect
    starts with a close (issue 23: a second connect waited on that lock for ever)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.client = config.client()
        self.timeout_s = config.timeout_s
        self.pipelined: _Pipelined | None = None

    @property
    def is_connected(self) -> bool:
        if self.pipelined is not None:
            return self.pipelined.is_open
        return self.client.is_connected

    async def connect(self) -> None:
        self._forget()
        # aiosmtplib bounds each step; this bounds them all (greeting, EHLO, STARTTLS, AUTH).
        async with asyncio.timeout(self.timeout_s):
            await self.client.connect()
            if self.client.last_ehlo_response is None:  # no STARTTLS or login asked for it
                with contextlib.suppress(aiosmtplib.SMTPHeloError):
                    await self.client.ehlo()  # a relay without EHLO: aiosmtplib's HELO path
        transport = self.client.transport
        if self.client.supports_extension("pipelining") and transport is not None:
            self.pipelined = _Pipelined(transport, self.client.supports_extension("size"),
                                        on_lost=self._lost)

    def _lost(self, pipelined: _Pipelined) -> None:
        # Heard late, the loss of a connection already replaced must not close the new one.
        if pipelined is self.pipelined:
            self.client.close()

    async def transfer(self, envelope_from: str, to: str, message: bytes) -> None:
        # One bound for the whole transaction: aiosmtplib's is per command (three of them).
        async with asyncio.timeout(self.timeout_s):
            if self.pipelined is not None:
                await self.pipelined.transfer(envelope_from, to, message)
            else:
                await _transfer(self.client, envelope_from, to, message)

    async def close(self, polite: bool = False) -> None:
        if self.pipelined is not None and polite:
            await self.pipelined.quit()
        if self.pipelined is None:
            await _close(self.client, polite)
        self._forget()

    def _forget(self) -> None:
        if self.pipelined is not None:
            self.pipelined.close()
            self.pipelined = None
        with contextlib.suppress(Exception):
            self.client.close()  # and aiosmtplib's connect lock is free again


def _dropped(error: Exception) -> bool:
    """The relay ended the connection: it hung up, reset it, or said 421 (closing)."""
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code == 421
    return isinstance(error, (aiosmtplib.SMTPServerDisconnected, ConnectionError))


def _ours(error: Exception) -> bool:
    """The failure is the relay's or the link's, not one recipient's or one message's."""
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code == 421 or isinstance(error, (
            aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPAuthenticationError,
            aiosmtplib.SMTPHeloError, aiosmtplib.SMTPConnectResponseError))
    return True


class SmtpPool:
    """`pool` persistent connections; each send borrows one, a broken one is replaced.

    It also knows whether it can deliver (`not_ready`, for /readyz): the last send failed
    for a reason of the relay's or the link's, or a send has run past its bounds."""

    PROBE_EVERY_S = 5.0

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._all = [_Connection(config) for _ in range(config.pool)]
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        for connection in self._all:
            self._idle.put_nowait(connection)
        self.problem: str | None = None
        self._failing_since = 0.0
        self._sending: dict[int, float] = {}  # id -> time.monotonic() it started
        self._ids = itertools.count()
        self._probe: asyncio.Task[None] | None = None
        self._probed_at = 0.0

    @contextlib.asynccontextmanager
    async def _borrow(self) -> AsyncIterator[_Connection]:
        connection = await self._idle.get()
        try:
            yield connection
        finally:
            self._idle.put_nowait(connection)

    async def send(self, envelope_from: str, to: str, message: bytes) -> None:
        """Hand one message to the relay; raises Transient or Permanent (`Bounced`)."""
        key = next(self._ids)
        self._sending[key] = time.monotonic()
        try:
            async with self._borrow() as connection:
                await self._send(connection, envelope_from, to, message)
        finally:
            del self._sending[key]

    async def _send(self, connection: _Connection, envelope_from: str, to: str,
                    message: bytes) -> None:
        for attempt in (1, 2):
            fresh = not connection.is_connected
            try:
                if fresh:
                    await connection.connect()
                await connection.transfer(envelope_from, to, message)
            except Exception as error:
                failure = classify(error)
                if _dropped(error) or (isinstance(failure, Transient) and not isinstance(
                        error, aiosmtplib.SMTPResponseException)):
                    await connection.close()
                if _dropped(error) and not fresh and attempt == 1:
                    # A relay closes idle connections (or says 421 as it does): one reconnect
                    # on a reused one is not a failure worth a retry round.
                    continue
                if isinstance(failure, Transient) and _ours(error):
                    self._failing(failure.reason)
                raise failure from error
            self._delivering()
            return

    def not_ready(self) -> list[str]:
        """Why the pool cannot deliver now (for /readyz); empty when it can."""
        now = time.monotonic()
        found = []
        if self.problem is not None:
            found.append(f"smtp: cannot deliver for {now - self._failing_since:.0f} s "
                         f"({self.problem})")
            if self._probe is None and now - self._probed_at >= self.PROBE_EVERY_S:
                # Nothing may be left to send (jobs dead-lettered, nobody subscribing): try
                # the relay ourselves, or this would stay until the next send.
                self._probed_at = now
                self._probe = asyncio.create_task(self._probe_relay(), name="smtp-probe")
        # Connect and transfer are bounded, each twice at most; past that a send is stuck.
        bound = 4 * self.config.timeout_s + 5.0
        stuck = [started for started in self._sending.values() if now - started > bound]
        if stuck:
            found.append(f"smtp: {len(stuck)} send(s) running for more than {bound:.0f} s "
                         f"(the longest {now - min(stuck):.0f} s)")
        return found

    async def _probe_relay(self) -> None:
        connection = _Connection(self.config)
        try:
            await connection.connect()
            await connection.close(polite=True)
        except Exception as error:
            await connection.close()
            self._failing(classify(error).reason)
        else:
            self._delivering()
        finally:
            self._probe = None

    def _failing(self, reason: str) -> None:
        if self.problem is None:
            self._failing_since = time.monotonic()
            log.warning("smtp_cannot_deliver", reason=reason,
                        relay=f"{self.config.host}:{self.config.port}")
        self.problem = reason

    def _delivering(self) -> None:
        if self.problem is not None:
            log.info("smtp_delivering_again", after_s=round(
                time.monotonic() - self._failing_since, 1))
        self.problem = None

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        for connection in self._all:
            await connection.close(polite=True)


class _Pipelined(asyncio.Protocol):
    """The mail transaction with PIPELINING (RFC 2920): MAIL, RCPT and DATA leave in one
    write and the message in a second, two round trips where aiosmtplib's commands take
    four. aiosmtplib cannot pipeline (its protocol reads one reply per command written), so
    this protocol takes over the transport aiosmtplib opened and reads the replies in order.

    Measured in `make bench` (docs/benchmark.md): per email, fewer socket writes and reads
    in the email service and in the relay, whose commands arrive together."""

    def __init__(self, transport: asyncio.BaseTransport, size: bool,
                 on_lost: Callable[[_Pipelined], object]) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)
        self.size = size
        self.on_lost = on_lost
        self._buffer = bytearray()
        self._lines: list[str] = []
        self._replies: deque[asyncio.Future[aiosmtplib.SMTPResponse]] = deque()
        self._open = True
        transport.set_protocol(self)

    @property
    def is_open(self) -> bool:
        return self._open and not self.transport.is_closing()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\n")) != -1:
            line = bytes(self._buffer[:end + 1])
            del self._buffer[:end + 1]
            self._lines.append(line[4:].strip().decode("utf-8", "surrogateescape"))
            if line[3:4] == b"-":
                continue  # a multi-line reply goes on
            code = int(line[:3]) if line[:3].isdigit() else -1
            reply = aiosmtplib.SMTPResponse(code, "\n".join(self._lines))
            self._lines = []
            if code == -1:
                self._fail(aiosmtplib.SMTPServerDisconnected("malformed reply"))
                self.transport.close()
                return
            if self._replies:
                waiter = self._replies.popleft()
                if not waiter.done():
                    waiter.set_result(reply)
            # A reply nobody asked for (a 421 before the relay hangs up): the connection's
            # loss follows, and fails what is still waiting.

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._open = False
        self._fail(aiosmtplib.SMTPServerDisconnected("Connection lost"))
        # aiosmtplib's protocol, which would have told its client, no longer hears of it.
        self.on_lost(self)

    def _fail(self, error: Exception) -> None:
        while self._replies:
            waiter = self._replies.popleft()
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()  # retrieved: a transaction may no longer be awaiting it

    def _send(self, data: bytes, replies: int) -> list[asyncio.Future[aiosmtplib.SMTPResponse]]:
        if not self.is_open:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        loop = asyncio.get_running_loop()
        waiters = [loop.create_future() for _ in range(replies)]
        self._replies.extend(waiters)
        self.transport.write(data)
        return waiters

    async def transfer(self, envelope_from: str, to: str, message: bytes) -> None:
        """One mail transaction; the caller bounds it in time."""
        if "\r" in to or "\n" in to or "\r" in envelope_from or "\n" in envelope_from:
            raise ValueError("an address holds a line break")  # never a second command
        size = f" SIZE={len(message)}" if self.size else ""
        envelope = f"MAIL FROM:<{envelope_from}>{size}\r\nRCPT TO:<{to}>\r\nDATA\r\n"
        try:
            mail, rcpt, data = self._send(envelope.encode("ascii"), 3)
            sender, recipient, start = await mail, await rcpt, await data
            if start.code == 354 and sender.code == 250 and recipient.code in (250, 251):
                (done,) = self._send(_dot_stuffed(message), 1)
                accepted = await done
                if accepted.code != 250:
                    raise aiosmtplib.SMTPDataError(accepted.code, accepted.message)
                return
        except asyncio.CancelledError:
            self.transport.close()  # replies may still come: this connection is out of step
            raise
        if start.code == 354:  # the relay took DATA without a sender or a recipient
            self.transport.close()
        # The refusal that matters is the first one; DATA's answer follows from it.
        if sender.code != 250:
            error: aiosmtplib.SMTPResponseException = aiosmtplib.SMTPSenderRefused(
                sender.code, sender.message, envelope_from)
        elif recipient.code not in (250, 251):
            error = aiosmtplib.SMTPRecipientRefused(recipient.code, recipient.message, to)
        else:
            error = aiosmtplib.SMTPDataError(start.code, start.message)
        await self._reset()
        raise error

    async def _reset(self) -> None:
        # As sendmail does: the envelope is reset, so the connection serves the next email.
        with contextlib.suppress(aiosmtplib.SMTPServerDisconnected, TimeoutError):
            async with asyncio.timeout(2.0):
                await self._send(b"RSET\r\n", 1)[0]

    async def quit(self) -> None:
        with contextlib.suppress(aiosmtplib.SMTPServerDisconnected, TimeoutError):
            async with asyncio.timeout(2.0):
                await self._send(b"QUIT\r\n", 1)[0]

    def close(self) -> None:
        self.transport.close()


def _dot_stuffed(message: bytes) -> bytes:
    """The message as DATA carries it: a line starting with "." gets another, CRLF ends it."""
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\r\n.", b"\r\n..") + b".\r\n"


async def _transfer(client: aiosmtplib.SMTP, envelope_from: str, to: str,
                    message: bytes) -> None:
    """MAIL, RCPT, DATA as `sendmail` sends them, without its extra parse of each address
    and its extra pass over the message (a regex over 3.5 KB, twice per email, was a few
    percent of the service's CPU): format.py's messages have CRLF line endings already."""
    options = [f"size={len(message)}"] if client.supports_extension("size") else []
    try:
        await client.mail(envelope_from, options=options)
        await client.rcpt(to)
        await client.data(message)
    except aiosmtplib.SMTPResponseException:
        # As sendmail does: the envelope is reset, so the connection serves the next email.
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
            await client.rset()
        raise


async def _close(client: aiosmtplib.SMTP, polite: bool = False) -> None:
    if polite and client.is_connected:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.quit(), 2.0)
    with contextlib.suppress(Exception):
        client.close()
