"""Slow and heavy clients (issue 25), through real sockets to a front door served as in
production (crieur.serve.server_config): slow heads and bodies are cut off, a large body is
read only from staff, every body is capped as it streams, and past the connection limit
the answer is 503."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image

from crieur.http_limits import HttpLimits
from crieur.serve import server_config
from services.notices.api import Context
from services.notices.app import create_app
from services.notices.auth import SESSION_COOKIE, Sessions
from services.notices.settings import NoticesSettings
from services.notices.store import NatsStore
from tests.integration.notices.helpers import Clock, random_insee

PNG = b"\x89PNG\r\n\x1a\n"


def noise_png() -> bytes:
    """A real PNG of about 90 KB (noise does not compress): over 64 KB, under the limit."""
    image = Image.frombytes("L", (300, 300), os.urandom(90_000))
    out = io.BytesIO()
    image.save(out, format="PNG")
    assert 64 * 1024 < len(out.getvalue()) < 200_000
    return out.getvalue()
# Generous: a loaded CI machine may be slow to notice a timeout; no speed is asserted.
WAIT_S = 20.0


class Served:
    def __init__(self, port: int, store: NatsStore, insee: str, token: str) -> None:
        self.port, self.store, self.insee, self.token = port, store, insee, token

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def upload_path(self) -> str:
        return f"/api/v1/communes/{self.insee}/attachments"

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


Serve = Callable[..., contextlib.AbstractAsyncContextManager[Served]]


@pytest.fixture
def serve(nats_url: str) -> Serve:
    """A front door on a random port, with these CRIEUR_HTTP_* limits."""

    @contextlib.asynccontextmanager
    async def served(**limits: Any) -> AsyncIterator[Served]:
        settings = NoticesSettings(nats_url=nats_url, attachment_max_bytes=200_000,
                                   max_body_bytes=100_000,
                                   public_url="https://crieur.example")
        store = await NatsStore.connect(nats_url, name="test-slow-heavy")
        insee = random_insee()
        await store.commune_registry.add(insee, "Lavoncourt")
        _, token = await store.staff_registry.add("Secrétaire", (insee,))
        app = create_app(settings, Context(store=store, settings=settings, clock=Clock()))
        config = server_config(app, "127.0.0.1", 0, grace_s=1, limits=HttpLimits(**limits))
        server = uvicorn.Server(config)
        running = asyncio.create_task(server.serve())
        try:
            async with asyncio.timeout(WAIT_S):
                while not server.started:
                    assert not running.done(), "the front door did not start"
                    await asyncio.sleep(0.05)
            port = server.servers[0].sockets[0].getsockname()[1]
            yield Served(port, store, insee, token)
        finally:
            server.should_exit = True
            await asyncio.wait_for(running, WAIT_S)
            await store.close()

    return served


async def answer_of(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of the one answer on a connection, read to its close."""
    raw = await asyncio.wait_for(reader.read(), WAIT_S)  # until the server closes
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: crieur.example",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_a_body_that_stops_coming_is_answered_408_and_the_connection_closed(
        serve: Serve) -> None:
    async with serve(body_timeout_s=0.5) as fd:
        reader, writer = await fd.connect()
        writer.write(request_head("POST", f"/api/v1/communes/{fd.insee}/notices", {
            "Authorization": f"Bearer {fd.token}", "Content-Type": "application/json",
            "Content-Length": "500"}) + b'{"title": "Coupure')
        await writer.drain()
        status, headers, body = await answer_of(reader)  # read() returned: closed
        writer.close()
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "body_timeout"


async def test_a_slow_or_silent_head_has_its_connection_closed(serve: Serve) -> None:
    async with serve(header_timeout_s=0.5) as fd:
        silent_reader, silent = await fd.connect()
        slow_reader, slow = await fd.connect()
        slow.write(b"GET /healthz HTTP/1.1\r\nHost: crieur.example\r\n")  # never ends
        await slow.drain()
        # read() returns once the server closes; it would wait for ever otherwise.
        assert await asyncio.wait_for(silent_reader.read(), WAIT_S) == b""
        assert await asyncio.wait_for(slow_reader.read(), WAIT_S) == b""
        silent.close()
        slow.close()
        # A head that arrives in time is served as before.
        async with httpx.AsyncClient(base_url=fd.url) as http:
            assert (await http.get("/healthz")).status_code == 200


async def test_a_large_anonymous_upload_is_refused_before_its_body_is_read(
        serve: Serve) -> None:
    async with serve() as fd:
        # 150 KB announced (over 64 KB, within the upload limit), 1 KB sent: the answer
        # comes without the rest, so the body was never waited for, let alone buffered.
        reader, writer = await fd.connect()
        writer.write(request_head("POST", fd.upload_path(), {
            "Content-Type": "image/png", "Content-Length": "150000"}) + PNG + b"\0" * 1000)
        await writer.drain()
        status, headers, body = await answer_of(reader)
        writer.close()
        assert status == 401
        assert headers["connection"] == "close"
        assert json.loads(body)["error"]["code"] == "unauthorized"
        # Of unknown length (chunked): the same.
        reader, writer = await fd.connect()
        writer.write(request_head("POST", fd.upload_path(), {
            "Content-Type": "image/png", "Transfer-Encoding": "chunked"})
            + b"400\r\n" + b"\0" * 1024 + b"\r\n")
        await writer.drain()
        status, _, _ = await answer_of(reader)
        writer.close()
        assert status == 401
        # Over the attachment limit by its declared length: 413 even from staff, unread.
        reader, writer = await fd.connect()
        writer.write(request_head("POST", fd.upload_path(), {
            "Authorization": f"Bearer {fd.token}", "Content-Type": "image/png",
            "Content-Length": "4900000"}) + PNG)
        await writer.drain()
        status, _, body = await answer_of(reader)
        writer.close()
        assert status == 413
        assert json.loads(body)["error"]["code"] == "attachment_too_large"
        # Staff's upload of the same size as the refused anonymous one is taken.
        async with httpx.AsyncClient(base_url=fd.url) as http:
            taken = await http.post(fd.upload_path(), content=noise_png(),
                                    headers={"Authorization": f"Bearer {fd.token}"})
        assert taken.status_code == 201, taken.text


async def test_a_staff_body_of_unknown_length_is_cut_off_at_the_limit_as_it_streams(
        serve: Serve) -> None:
    async with serve() as fd:
        reader, writer = await fd.connect()
        writer.write(request_head("POST", fd.upload_path(), {
            "Authorization": f"Bearer {fd.token}", "Content-Type": "image/png",
            "Transfer-Encoding": "chunked"}))
        # 600 KB of a body that would go on for ever, over the 200 KB limit and the margin
        # left for a form's other fields: the answer comes while the client is still
        # sending, so the server holds at most the limit.
        for _ in range(60):
            writer.write(b"2800\r\n" + b"\0" * 10_240 + b"\r\n")
            await writer.drain()
        status, headers, body = await answer_of(reader)
        writer.close()
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["error"] == {
        "code": "attachment_too_large",
        "message": "the attachment is larger than 200000 bytes"}


async def test_a_signed_in_staff_session_may_send_a_large_form(serve: Serve) -> None:
    async with serve() as fd:
        account = await fd.store.staff_registry.set_password(f"Anne {fd.insee}", "correct horse battery",
                                                    (fd.insee,))
        session_id, _ = await Sessions(fd.store.sessions).create(account, Clock()())
        form = {"title": "Fête", "body": "x" * 100_000}
        path = f"/staff/communes/{fd.insee}/preview"
        async with httpx.AsyncClient(base_url=fd.url) as http:
            anonymous = await http.post(path, data=form)
        async with httpx.AsyncClient(base_url=fd.url,
                                     cookies={SESSION_COOKIE: session_id}) as http:
            signed_in = await http.post(path, data=form)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    # Past the guard: the staff page itself answered (in HTML), having read the form.
    assert signed_in.headers["content-type"].startswith("text/html"), signed_in.text


async def test_past_the_connection_limit_the_answer_is_503(serve: Serve) -> None:
    async with serve(max_connections=4, header_timeout_s=60) as fd:
        held = [await fd.connect() for _ in range(4)]
        reader, writer = await fd.connect()
        writer.write(request_head("GET", "/healthz", {"Connection": "close"}))
        await writer.drain()
        status, _, _ = await answer_of(reader)
        writer.close()
        assert status == 503
        for _, idle in held:
            idle.close()
        # Once they are gone, the front door serves again (bounded wait, no speed asked).
        async with httpx.AsyncClient(base_url=fd.url) as http:
            statuses = []
            for _ in range(int(WAIT_S / 0.1)):
                statuses.append((await http.get("/healthz")).status_code)
                if statuses[-1] == 200:
                    break
                await asyncio.sleep(0.1)
        assert statuses[-1] == 200, statuses
