"""The email tests' fixtures; they live in helpers.py with what the tests import (tests import
no conftest)."""

from tests.integration.email.helpers import front_door, mailbox, start_email

__all__ = ["front_door", "mailbox", "start_email"]
