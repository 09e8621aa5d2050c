"""One village per test module, started as `make run` starts it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.helpers import Village, launcher_events, start_village

# Re-exported for tests that import them from this conftest.
__all__ = ["Village", "launcher_events", "start_village", "village"]


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Village]:
    """One village for a test module (starting one takes a few seconds)."""
    v = start_village(tmp_path_factory.mktemp("village"))
    yield v
    v.stop()
