"""What the staff browser tests share: axe-core's verdict, the `crieur` command, screenshots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.helpers import Village
from tests.helpers import repo_root

CRIEUR = str(Path(sys.executable).parent / "crieur")
# Kept after the run, for a person to look at (var/ is not in git).
SCREENSHOTS = repo_root() / "var" / "screenshots" / "staff"


def axe_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page (axe ships in the wheel)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def crieur(village: Village, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The operator's `crieur` command against the village's NATS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
    env["CRIEUR_NATS_URL"] = village.nats_url
    return subprocess.run([CRIEUR, *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=60)


def keep(shot: Path) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / shot.name)
