"""The package as `pip install .` installs it (deploy/README.md, the Docker image), not the
editable install the other tests run from: the wheel is built, installed in a fresh venv,
and the village is started from that venv outside the repository. The wheel holds no
development code (crieur_dev/, the stand-ins) and requires none of its dependencies; the
village borrows the stand-ins from the source tree, as a developer's checkout has them.

Slow (a venv and every dependency installed, about two minutes): one install per session.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from crieur.nats_server import free_port
from tests.e2e.helpers import Village, start_village
from tests.helpers import repo_root

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PACKAGES = ("crieur", "schemas", "services")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    home: Path  # a folder outside the repository, to start from
    dev: Path  # holds a copy of crieur_dev only: PYTHONPATH for the village's stand-ins


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # From the tracked files alone, as a fresh clone has them: the working tree's
    # *.egg-info (left by the editable install) would otherwise add what package-data
    # misses, and hide it.
    source = tmp_path_factory.mktemp("source")
    for name in subprocess.run(["git", "ls-files"], cwd=repo_root(), check=True,
                               capture_output=True, text=True).stdout.splitlines():
        if (repo_root() / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo_root() / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                    "-q", "-w", str(dist)], check=True, timeout=300)
    [built] = dist.glob("crieur-*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=300)
    python = root / "venv" / "bin" / "python"
    # The locked dependencies from the package index (or pip's cache), then the wheel, as
    # an operator and the Docker image install them (deploy/README.md).
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--require-hashes", "-r",
                    str(repo_root() / "requirements.lock")], check=True, timeout=900)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, timeout=900)
    # The stand-ins' own dependencies, at their locked versions and hashes.
    extra = root / "standins.lock"
    extra.write_text("".join(locked("requirements-dev.lock", STANDIN_DEPENDENCIES)))
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--require-hashes",
                    "-r", str(extra)], check=True, timeout=900)
    home = root / "home"
    home.mkdir()
    # crieur_dev alone on the village's path (the repository root would shadow the wheel).
    dev = root / "dev"
    shutil.copytree(repo_root() / "crieur_dev", dev / "crieur_dev")
    return Installed(wheel, python, home, dev)


# What crieur_dev needs beyond the runtime lock: aiosmtpd and its own dependencies.
STANDIN_DEPENDENCIES = ("aiosmtpd", "atpublic", "attrs")


def locked(lock: str, names: tuple[str, ...]) -> list[str]:
    """The blocks of `lock` (a pin and its hashes) that pin one of `names`."""
    blocks = re.split(r"\n(?=\S)", (repo_root() / lock).read_text())
    found = [b + "\n" for b in blocks if b.split("==")[0] in names and "==" in b.split()[0]]
    assert len(found) == len(names), f"{names} not all in {lock}"
    return found


def tracked_data_files() -> set[str]:
    """Every file under the packages that is not Python: templates, schemas, pages."""
    listed = subprocess.run(["git", "ls-files", *PACKAGES], cwd=repo_root(), check=True,
                            capture_output=True, text=True).stdout.split()
    return {f for f in listed if not f.endswith(".py") and Path(repo_root(), f).is_file()}


def test_the_wheel_holds_every_file_the_packages_read(wheel: Path) -> None:
    files = tracked_data_files()
    assert "services/notices/templates/staff/login.html" in files
    with zipfile.ZipFile(wheel) as built:
        missing = files - set(built.namelist())
    assert missing == set(), f"not in the wheel (pyproject.toml package-data): {missing}"


def test_the_wheel_holds_no_development_code_nor_its_dependencies(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as built:
        names = built.namelist()
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [line.split(":", 1)[1].strip()
                    for line in built.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    assert "crieur/village.py" in names and "services/email/sender.py" in names
    development = [n for n in names if n.startswith("crieur_dev/") or "standins" in n]
    assert development == [], development
    runtime = [r for r in requires if "extra ==" not in r]
    assert any(r.startswith("nats-py") for r in runtime), runtime
    assert not [r for r in runtime if r.startswith(("aiosmtpd", "cryptography"))], runtime
    # Still declared, for development: `pip install -e .[dev]` and the dev lock have it.
    assert any(r.startswith("aiosmtpd") and 'extra == "dev"' in r for r in requires), requires


def test_nothing_is_imported_from_the_source_tree(installed: Installed) -> None:
    done = subprocess.run(
        [str(installed.python), "-c",
         "import crieur, schemas, services.notices; print(crieur.__file__, schemas.__file__,"
         " services.notices.__file__)"],
        cwd=installed.home, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        check=True)
    paths = done.stdout.split()
    assert len(paths) == 3
    assert all(p.startswith(str(installed.python.parent.parent)) for p in paths), paths


@dataclass
class InstalledVillage:
    village: Village
    ports: dict[str, int]


@pytest.fixture(scope="module")
def running(installed: Installed) -> Iterator[InstalledVillage]:
    ports = {"CRIEUR_EMAIL_HTTP_PORT": free_port(), "CRIEUR_SMS_HTTP_PORT": free_port(),
             "CRIEUR_PUSH_HTTP_PORT": free_port()}
    env = {k: str(v) for k, v in ports.items()} | {"PYTHONPATH": str(installed.dev)}
    village = start_village(installed.home / "var", env, python=str(installed.python),
                            cwd=installed.home)
    yield InstalledVillage(village, ports)
    village.stop()


def test_staff_sign_in_and_a_page_of_every_service_from_the_installed_package(
        running: InstalledVillage) -> None:
    village = running.village
    banner = village.output.read_text()
    user = re.search(r"^\s+user\s+(\S+)$", banner, re.M)
    password = re.search(r"^\s+password\s+(\S+)$", banner, re.M)
    assert user and password, banner[-2000:]
    with httpx.Client(base_url=village.api, timeout=30) as staff:
        form = staff.get("/staff/login")
        assert form.status_code == 200, form.text[-2000:]
        assert "Connexion à l'espace mairie" in html.unescape(form.text)
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf
        signed_in = staff.post("/staff/login", data={
            "csrf": csrf[1], "user": user[1], "password": password[1], "next": "/staff"})
        assert signed_in.status_code == 303, signed_in.text[-2000:]
        desk = staff.get(signed_in.headers["location"], follow_redirects=True)
        assert desk.status_code == 200 and "Lavoncourt" in desk.text, desk.text[-2000:]

    commune = httpx.get(f"{village.api}/communes/70299", timeout=30)
    assert commune.status_code == 200 and "Lavoncourt" in commune.text
    # The email service's own page (its templates), reached through the front door.
    bad_link = httpx.get(f"{village.api}/api/v1/subscriptions/email/confirm/not-a-token",
                         timeout=30)
    assert 400 <= bad_link.status_code < 500, bad_link.text[-2000:]
    assert bad_link.headers["content-type"].startswith("text/html")
    sign = httpx.get(village.panel + "/", timeout=30)
    assert sign.status_code == 200 and "<html" in sign.text.lower()
    for name, port in running.ports.items():
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        assert health.status_code == 200, (name, health.text)
    assert "TemplateNotFound" not in village.output.read_text()
