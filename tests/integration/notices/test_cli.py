"""The `crieur` command as an operator and a secretary use it, against a served front door."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from crieur.nats_server import free_port
from services.notices.api import Context
from services.notices.app import create_app
from services.notices.settings import NoticesSettings
from services.notices.store import NatsStore
from tests.integration.notices.helpers import random_insee

pytestmark = pytest.mark.integration

CRIEUR = str(Path(sys.executable).parent / "crieur")  # the console script in .venv


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Shell:
    env: dict[str, str]
    insee: str
    token: str
    store: NatsStore

    async def run(self, *args: str) -> Run:
        process = await asyncio.create_subprocess_exec(
            CRIEUR, *args, env=self.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture
async def shell(nats_url: str) -> AsyncIterator[Shell]:
    """A front door served over real HTTP on a free port, and the environment to reach it."""
    port = free_port()
    settings = NoticesSettings(nats_url=nats_url, http_port=port)
    store = await NatsStore.connect(nats_url, name="test-cli")
    insee = random_insee()
    await store.commune_registry.add(insee, "Lavoncourt")
    _, token = await store.staff_registry.add("Secrétaire", (insee,))
    app = create_app(settings, Context(store=store, settings=settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    serving = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
    env |= {"CRIEUR_NATS_URL": nats_url, "CRIEUR_API_URL": f"http://127.0.0.1:{port}",
            "CRIEUR_TOKEN": token}
    try:
        yield Shell(env, insee, token, store)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        await store.close()


async def test_a_malformed_commune_code_is_a_clear_error_everywhere(shell: Shell) -> None:
    for args in (["commune", "add", "2C004", "Nulle part"], ["commune", "rename", "7029", "X"],
                 ["staff", "add", "--commune", "abcde", "--name", "X"],
                 ["publish", "--commune", "70 299", "--category", "alerte", "--title", "t",
                  "--body", "b"],
                 ["withdraw", "--commune", "*", "--id", "0123456789abcdef"]):
        result = await shell.run(*args)
        assert result.code == 2, (args, result)
        assert "is not an INSEE code" in result.err and "Traceback" not in result.err, args


async def test_adding_an_existing_commune_says_so_and_renaming_is_explicit(shell: Shell) -> None:
    same = await shell.run("commune", "add", shell.insee, "Lavoncourt")
    assert same.code == 0 and "already registered" in same.out
    other = await shell.run("commune", "add", shell.insee, "Dampierre")
    assert other.code == 1 and "exists" in other.err and "rename" in other.err
    commune = await shell.store.commune_registry.get(shell.insee)
    assert commune is not None and commune.name == "Lavoncourt", "nothing renamed by mistake"
    renamed = await shell.run("commune", "rename", shell.insee, "Lavoncourt-le-Haut")
    assert renamed.code == 0, renamed
    names = (await shell.run("commune", "list")).out
    assert f"{shell.insee}\tLavoncourt-le-Haut" in names


async def test_a_notice_with_links_and_attachments_published_twice_is_one_notice(
    shell: Shell,
) -> None:
    args = ["publish", "--commune", shell.insee, "--category", "travaux",
            "--title", "Route de Gray fermée", "--body", "Du 2 au 4 décembre.",
            "--link", "https://mairie.example.fr/deviation Plan de la déviation",
            "--link", "https://mairie.example.fr/travaux",
            "--attachment", "https://mairie.example.fr/arrete-12.pdf Arrêté municipal"]
    first = await shell.run(*args)
    assert first.code == 0, first
    notice = json.loads(first.out)
    assert notice["links"] == [
        {"url": "https://mairie.example.fr/deviation", "label": "Plan de la déviation"},
        {"url": "https://mairie.example.fr/travaux", "label": ""}]
    assert notice["attachments"] == [
        {"name": "Arrêté municipal", "url": "https://mairie.example.fr/arrete-12.pdf",
         "media_type": "application/pdf", "size": None}]
    # The secretary's connection dropped, she runs the command again: still one notice.
    again = await shell.run(*args)
    assert again.code == 0 and json.loads(again.out)["id"] == notice["id"]
    assert "already published" in again.err
    listed = shell.store.view.current(shell.insee, shell.store.view.all(shell.insee)[0].created_at)
    assert [n.id for n in listed] == [notice["id"]]


async def test_help_lists_only_commands_that_exist(shell: Shell) -> None:
    help_text = (await shell.run("--help")).out
    named = set()
    for group in re.findall(r"\(([a-z]+(?:, [a-z]+)+)\)", help_text):
        named |= {word.strip() for word in group.split(",")}
    assert named >= {"publish", "correct", "withdraw", "commune", "staff"}
    for command in named:
        result = await shell.run(command, "--help")
        assert result.code == 0, (command, result.err)
