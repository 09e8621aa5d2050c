"""The lock files agree with pyproject.toml, and what installs from them does so with hashes.

A dependency added or narrowed in pyproject.toml without `make lock` fails here, not on a
fresh machine (whose `make venv` would install the stale lock and miss the package).
"""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import repo_root

ROOT = repo_root()
# "name==version \" then its hashes, as uv writes them.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}"
                 r"(?: \\)?\n)+)", re.M)


def pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    found = {canonicalize_name(m[1]): m[2] for m in PIN.finditer(text)}
    # Every requirement line is a pin with hashes (pip's --require-hashes insists too).
    listed = re.findall(r"^[A-Za-z0-9]\S*", text, re.M)
    assert len(found) == len(listed), set(listed) - {f"{k}=={v}" for k, v in found.items()}
    return found


def project() -> dict[str, list[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {"runtime": data["dependencies"], "dev": data["optional-dependencies"]["dev"]}


def test_every_dependency_is_locked_at_a_version_pyproject_allows() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    wanted = project()
    for lock, requirements in ((runtime, wanted["runtime"]),
                               (dev, wanted["runtime"] + wanted["dev"])):
        for line in requirements:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            assert name in lock, f"{name} is not locked: run `make lock`"
            assert requirement.specifier.contains(lock[name], prereleases=True), (
                f"{name}=={lock[name]} is outside {requirement.specifier}: run `make lock`")
    # The image runs what the tests ran.
    assert {n: v for n, v in dev.items() if n in runtime} == runtime
    assert runtime["aiosmtplib"] == "5.1.3" and runtime["fastapi-swagger"] == "0.4.64"
    # The stand-ins' SMTP server is development only: the image installs the runtime lock.
    assert "aiosmtpd" in dev and "aiosmtpd" not in runtime


def test_make_and_the_image_install_the_locks_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r requirements-dev.lock" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
    # The venv is refilled when a lock moves, not only when pyproject.toml does.
    assert re.search(r"^STAMP := .*cat pyproject\.toml \$\(LOCKS\)", makefile, re.M)
    assert re.search(r"^LOCKS := requirements\.lock requirements-dev\.lock$", makefile, re.M)
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r /src/requirements.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps /src" in dockerfile
