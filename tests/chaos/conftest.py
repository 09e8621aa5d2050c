"""The fault-injection suite (issue 13): one chaos village for the session, and the table.

`make chaos` sets CRIEUR_CHAOS=full and runs every scenario; plain `pytest` (`make test`)
runs those not marked `chaos_full` (a selection of a few minutes). Either way the table of
what the sinks received is printed at the end and written to var/chaos/chaos.json.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.chaos.harness import ROWS, ChaosVillage, out_dir, table, write_table

FULL = os.environ.get("CRIEUR_CHAOS") == "full"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: a fault-injection scenario against the real "
                                       "village (issue 13)")
    config.addinivalue_line("markers", "chaos_full: run by `make chaos` only "
                                       "(CRIEUR_CHAOS=full), not by `make test`")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if FULL:
        return
    skip = pytest.mark.skip(reason="make chaos only (CRIEUR_CHAOS=full)")
    for item in items:
        if item.get_closest_marker("chaos_full") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
async def village() -> AsyncIterator[ChaosVillage]:
    """Every process of the village, started once for the suite (a few seconds).

    Its folder is our own, not pytest's tmp_path: pytest sessions running beside this one
    (as root, on a shared machine) prune each other's old tmp_path folders, store included.
    The services' logs are kept under var/chaos/logs when it stops.
    """
    root = Path(tempfile.mkdtemp(prefix="crieur-chaos-"))
    v = ChaosVillage(root)
    try:
        await v.start()
        yield v
    finally:
        v.stop()
        logs = out_dir() / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        shutil.copytree(root / "logs", logs, dirs_exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    path = write_table(ROWS, "full" if FULL else "make test")
    terminalreporter.write_sep("=", "chaos: what the sinks received")
    terminalreporter.write_line(table(ROWS))
    terminalreporter.write_line(f"written to {path}")
