"""The fault-injection suite (issue 13): one chaos village for the session, and the table.

`make chaos` sets CRIEUR_CHAOS=full and runs every scenario; plain `pytest` (`make test`)
runs those not marked `chaos_full` (a selection of a few minutes). Either way the table of
what the sinks received is printed at the end and written to var/chaos/chaos.json.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.chaos.harness import ROWS, ChaosVillage, table, write_table

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
async def village(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ChaosVillage]:
    """Every process of the village, started once for the suite (a few seconds)."""
    v = ChaosVillage(tmp_path_factory.mktemp("chaos-village"))
    try:
        await v.start()
        yield v
    finally:
        v.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    path = write_table(ROWS, "full" if FULL else "make test")
    terminalreporter.write_sep("=", "chaos: what the sinks received")
    terminalreporter.write_line(table(ROWS))
    terminalreporter.write_line(f"written to {path}")
