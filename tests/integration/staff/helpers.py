"""What the staff pages' integration tests share: a browser-like client that signs in."""

from __future__ import annotations

import asyncio
import html
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.notices.store import NatsStore
from tests.integration.notices.helpers import Clock

PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
CRIEUR = str(Path(sys.executable).parent / "crieur")


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


@dataclass
class Office:
    """A front door, its commune, and the means to act as two members of its staff."""

    app: FastAPI
    store: NatsStore
    clock: Clock
    insee: str
    token: str
    transport: httpx.ASGITransport

    def browser(self) -> httpx.AsyncClient:
        # https: the session cookie is Secure (the public URL is https) and is sent back.
        return httpx.AsyncClient(transport=self.transport, base_url="https://test")

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_in(http: httpx.AsyncClient, user: str, password: str = PASSWORD
                  ) -> httpx.Response:
    form = await http.get("/staff/login")
    assert form.status_code == 200
    return await http.post("/staff/login", data={
        "csrf": csrf_of(form.text), "user": user, "password": password, "next": "/staff"})


async def page_csrf(http: httpx.AsyncClient, path: str) -> str:
    page = await http.get(path)
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def shown(reply: httpx.Response) -> str:
    """The page's HTML with entities decoded, to look for French text in it (l'avis)."""
    return html.unescape(reply.text)


async def crieur(nats_url: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """Run the `crieur` command as an operator does; its exit code, stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
    process = await asyncio.create_subprocess_exec(
        CRIEUR, *args, env=env | {"CRIEUR_NATS_URL": nats_url},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
