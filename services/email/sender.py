"""The SMTP side: a pool of persistent aiosmtplib connections, and what each failure means.

RFC 5321: a 4xx reply or a dropped connection is worth trying again later (Transient);
a 5xx to the recipient or the message is final for this address (Permanent -> bounce).
A 5xx to our own sender address or to our login is the operator's problem, not the
resident's: it is Transient, so no address is marked bounced for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

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


class SmtpPool:
    """`pool` persistent connections; each send borrows one, a broken one is replaced."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._all = [config.client() for _ in range(config.pool)]
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        for client in self._all:
            self._idle.put_nowait(client)

    @contextlib.asynccontextmanager
    async def _borrow(self) -> AsyncIterator[aiosmtplib.SMTP]:
        client = await self._idle.get()
        try:
            yield client
        finally:
            self._idle.put_nowait(client)

    async def send(self, envelope_from: str, to: str, message: bytes) -> None:
        """Hand one message to the relay; raises Transient or Permanent (`Bounced`)."""
        async with self._borrow() as client:
            for attempt in (1, 2):
                fresh = not client.is_connected
                try:
                    if fresh:
                        await client.connect()
                    await _transfer(client, envelope_from, to, message)
                    return
                except aiosmtplib.SMTPServerDisconnected as error:
                    # A relay closes idle connections: one reconnect on a reused one is
                    # not a failure worth a retry round.
                    await _close(client)
                    if fresh or attempt == 2:
                        raise classify(error) from error
                except Exception as error:
                    failure = classify(error)
                    if isinstance(failure, Transient) and not isinstance(
                            error, aiosmtplib.SMTPResponseException):
                        await _close(client)
                    elif isinstance(error, aiosmtplib.SMTPResponseException) and error.code == 421:
                        await _close(client)  # 421: the relay is closing this connection
                    raise failure from error

    async def close(self) -> None:
        for client in self._all:
            await _close(client, polite=True)


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
