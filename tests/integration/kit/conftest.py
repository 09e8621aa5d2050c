"""The kit's fixtures; they live in helpers.py with what the tests import (tests import no conftest)."""

from tests.integration.kit.helpers import nc, start_kit

__all__ = ["nc", "start_kit"]
