"""The SMS stand-in keeps the last KEPT_IN_MEMORY requests in memory, not every one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from crieur_dev.standins.sms import KEPT_IN_MEMORY, SmsStandinState


def request(number: int) -> Any:
    return SimpleNamespace(method="POST", url=SimpleNamespace(path="/v3/transactionalSMS/send",
                                                              query=""),
                           headers={"n": str(number)})


def test_only_the_last_requests_stay_in_memory(tmp_path: Path) -> None:
    state = SmsStandinState(tmp_path)
    for number in range(KEPT_IN_MEMORY + 5):
        state.arrived(request(number), b'{"recipient": "33600000000"}')
    kept = [int(entry["headers"]["n"]) for entry in state.received]
    assert kept == list(range(5, KEPT_IN_MEMORY + 5))
