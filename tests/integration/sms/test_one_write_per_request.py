"""Each Brevo request leaves in one socket write (services.sms.providers.coalescing), and
the server gets exactly those bytes; over TLS each request still arrives whole."""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any, ClassVar

import httpcore
import pytest

from services.sms.format import prepare_text
from services.sms.providers import brevo
from services.sms.providers.coalescing import CoalescingBackend, CoalescingStream

pytestmark = pytest.mark.integration

ANSWER = b'HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 17\r\n' \
         b'\r\n{"messageId": 42}'


class _Provider(asyncio.Protocol):
    """Brevo, as far as the wire goes: records each read, answers once a body is whole."""

    def __init__(self, reads: list[bytes]) -> None:
        self.reads = reads
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reads.append(data)
        self.buffer += data
        head, found, body = self.buffer.partition(b"\r\n\r\n")
        if not found:
            return
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        if len(body) >= length:
            self.buffer = body[length:]
            self.transport.write(ANSWER)


async def _serve(reads: list[bytes], context: ssl.SSLContext | None = None
                 ) -> asyncio.Server:
    return await asyncio.get_running_loop().create_server(
        lambda: _Provider(reads), "127.0.0.1", 0, ssl=context)


def _requests_in(reads: list[bytes]) -> list[bytes]:
    return [r for r in reads if r.startswith(b"POST ")]


class _CountingBackend(httpcore.AnyIOBackend):
    """httpcore's asyncio backend, counting what goes to the socket."""

    writes: ClassVar[list[bytes]] = []

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        stream = await super().connect_tcp(*args, **kwargs)
        real_write = stream.write

        async def write(buffer: bytes, timeout: float | None = None) -> None:
            self.writes.append(buffer)
            await real_write(buffer, timeout)

        stream.write = write  # type: ignore[method-assign]
        return stream


async def test_a_brevo_request_goes_to_the_socket_in_one_write(
        monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []
    monkeypatch.setattr(_CountingBackend, "writes", writes)
    monkeypatch.setattr(httpcore, "AnyIOBackend", _CountingBackend)
    reads: list[bytes] = []
    server = await _serve(reads)
    port = server.sockets[0].getsockname()[1]
    provider = brevo.BrevoProvider("key-1", "Crieur", base_url=f"http://127.0.0.1:{port}",
                                   timeout_s=5.0, concurrency=1)
    texts = ("Route de Gray fermée", "Coupure d'eau demain")
    try:
        for text in texts:
            accepted = await provider.send("+33612345678", prepare_text(text))
            assert accepted.message_id == "42"
    finally:
        await provider.aclose()
        server.close()
    # Two requests on one kept-alive connection: one socket write each, head and JSON body
    # (httpcore writes them in two calls), and the server got exactly those bytes.
    assert len(writes) == 2
    assert b"".join(reads) == b"".join(writes)
    for write, text in zip(writes, texts, strict=True):
        head, _, body = write.partition(b"\r\n\r\n")
        assert head.startswith(b"POST /v3/transactionalSMS/send HTTP/1.1\r\n")
        assert b"\r\napi-key: key-1\r\n" in head
        assert json.loads(body)["content"] == text


async def test_over_tls_each_request_arrives_whole(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    reads: list[bytes] = []
    server = await _serve(reads, served)
    port = server.sockets[0].getsockname()[1]
    # The pool BrevoProvider builds, with a context that trusts the test certificate.
    pool = httpcore.AsyncConnectionPool(ssl_context=ssl.create_default_context(cafile=cert),
                                        network_backend=CoalescingBackend())
    body = json.dumps({"content": "Tempête"}).encode()
    try:
        for _ in range(2):
            answer = await pool.request(
                "POST", f"https://127.0.0.1:{port}/v3/transactionalSMS/send",
                headers=[(b"content-type", b"application/json")], content=body)
            assert answer.status == 201
    finally:
        await pool.aclose()
        server.close()
    requests = _requests_in(reads)
    assert len(requests) == 2 and all(r.endswith(b"\r\n\r\n" + body) for r in requests)


class _Recorded(httpcore.AsyncNetworkStream):
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.writes.append(buffer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return b""

    async def aclose(self) -> None:
        self.closed = True


async def test_writes_wait_for_the_next_read_and_a_close_drops_them() -> None:
    inner = _Recorded()
    stream = CoalescingStream(inner)
    await stream.write(b"POST / HTTP/1.1\r\n\r\n")
    await stream.write(b"")
    await stream.write(b"{}")
    assert inner.writes == []
    await stream.read(10)
    assert inner.writes == [b"POST / HTTP/1.1\r\n\r\n{}"]
    await stream.read(10)  # nothing kept: nothing written
    assert len(inner.writes) == 1
    await stream.write(b"never sent")
    await stream.aclose()
    assert inner.closed and len(inner.writes) == 1


def test_the_brevo_pool_sends_through_the_coalescing_backend(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    url = "https://api.brevo.com/v3/transactionalSMS/send"
    assert isinstance(brevo.connection_pool(url, 4)._network_backend, CoalescingBackend)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    proxied = brevo.connection_pool(url, 4)
    assert isinstance(proxied, httpcore.AsyncHTTPProxy)
    assert isinstance(proxied._network_backend, CoalescingBackend)
