"""The documentation under docs/ tells every setting, make target and `crieur` command, and
its generated settings page matches the Settings classes."""

from __future__ import annotations

import argparse
import importlib
import re

from pydantic_settings import BaseSettings

from crieur.settings import CommonSettings
from docs.gen_settings import PAGE, SECTIONS, env_names, render
from tests.helpers import repo_root

ROOT = repo_root()
DOCS = ROOT / "docs"


def hand_written() -> str:
    """Every page but the generated one, which would name every setting whatever the rest says."""
    pages = sorted(p for p in DOCS.rglob("*.md") if p != PAGE)
    assert len(pages) >= 10, pages
    return "\n".join(p.read_text() for p in pages)


def settings_classes() -> set[type[BaseSettings]]:
    # Importing each service's settings module registers its class as a subclass.
    for _, module, _, _ in SECTIONS:
        importlib.import_module(module)
    found: set[type[BaseSettings]] = set()
    todo: list[type[BaseSettings]] = [CommonSettings]
    while todo:
        cls = todo.pop()
        if cls not in found and cls.__module__.split(".")[0] != "tests":
            found.add(cls)
            todo += cls.__subclasses__()
    return found


def variables(classes: set[type[BaseSettings]]) -> set[str]:
    return {name for cls in classes for field, info in cls.model_fields.items()
            for name in env_names(cls, field, info) if name.startswith("CRIEUR_")}


def test_the_settings_page_is_generated_from_the_settings_classes() -> None:
    assert PAGE.read_text() == render(), (
        "docs/operations/settings.md is stale: run `make settings-doc` and commit")


def test_the_settings_page_lists_every_settings_class() -> None:
    listed = {f"{module}.{name}" for _, module, name, _ in SECTIONS}
    found = {f"{cls.__module__}.{cls.__qualname__}" for cls in settings_classes()}
    assert found <= listed, f"add to docs.gen_settings.SECTIONS: {found - listed}"


def test_every_crieur_setting_is_documented_by_hand() -> None:
    classes = settings_classes() | {
        importlib.import_module("crieur.http_limits").HttpLimits,
        importlib.import_module("crieur.provision").ProvisionSettings}
    names = variables(classes)
    # The kit's and the sign's own, so a broken collection cannot pass on a handful.
    assert {"CRIEUR_NATS_URL", "CRIEUR_CHANNEL_ACK_WAIT_S", "CRIEUR_SMS_CODE_BUDGET",
            "CRIEUR_FCM_CREDENTIALS", "CRIEUR_HTTP_BACKLOG", "CRIEUR_PANEL_SIZE"} <= names
    text = hand_written()
    missing = sorted(n for n in names if not re.search(rf"\b{n}\b", text))
    assert missing == [], "settings no page of docs/ tells"


def test_every_crieur_variable_the_code_reads_is_documented() -> None:
    # Those read outside a Settings class too (CRIEUR_TOKEN, CRIEUR_NATS_PORT, CRIEUR_CHAOS...).
    named: set[str] = set()
    for package in ("crieur", "services", "schemas", "bench"):
        for path in (ROOT / package).rglob("*.py"):
            named |= set(re.findall(r"\bCRIEUR_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    assert "CRIEUR_TOKEN" in named
    text = hand_written()
    assert sorted(n for n in named if not re.search(rf"\b{n}\b", text)) == []


def test_every_make_target_is_documented() -> None:
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.*)$", makefile, re.M)
    assert phony
    targets = phony[1].split()
    assert {"run", "test", "docs", "chaos", "bench"} <= set(targets)
    text = hand_written()
    assert [t for t in targets if f"make {t}" not in text] == []


def subcommands(parser: argparse.ArgumentParser, prefix: str = "crieur") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found += subcommands(sub, f"{prefix} {name}")
    return found


def test_every_crieur_command_is_documented() -> None:
    cli = importlib.import_module("services.notices.cli")
    parser = cli.parser()
    commands = subcommands(parser)
    assert {"crieur publish", "crieur staff revoke", "crieur dead-letters replay"} <= set(commands)
    text = " ".join(hand_written().split())
    # A group (`crieur staff`) is told through its commands.
    leaves = [c for c in commands if not any(o.startswith(c + " ") for o in commands)]
    assert [c for c in leaves if c not in text] == []


def test_the_readme_is_short_and_points_into_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "make run" in readme and "make test" in readme
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert "docs/index.md" in links
    assert [link for link in links if not (ROOT / link).exists()] == []


def test_ci_builds_the_docs_strictly() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make docs$", ci, re.M)
    recipe = (ROOT / "Makefile").read_text().split("\ndocs: venv\n", 1)[1].split("\n\n", 1)[0]
    # --quiet would hide the warnings --strict counts, and a broken link would pass.
    assert "mkdocs build --strict" in recipe and "--quiet" not in recipe


def test_no_page_cites_an_issue_number() -> None:
    # A reader of the repository cannot see the tracker: say what, not "issue 13".
    texts = {"README.md": (ROOT / "README.md").read_text(),
             "deploy/README.md": (ROOT / "deploy" / "README.md").read_text()}
    texts |= {str(p.relative_to(ROOT)): p.read_text() for p in DOCS.rglob("*.md")}
    cited = {name: re.findall(r"\bissues? #?\d+", text, re.I) for name, text in texts.items()}
    assert {name: found for name, found in cited.items() if found} == {}
