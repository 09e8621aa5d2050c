"""What the sinks received, read from the stand-ins' own records (files), cheaply and often."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from crieur_dev.standins.smtp import ARRIVALS_FILE


class JsonLines:
    """Follows a stand-in's `<name>.jsonl` from where it is now: new records only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self._partial = b""

    def new_lines(self) -> list[bytes]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # a line still being written
        return [line for line in lines if line]

    def new_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.new_lines()]


class MailArrivals:
    """Follows the SMTP stand-in's `.arrivals` (a line per message kept, its file name
    `<time_ns>-<n>`) from where it is now: reads only what was added since, where a count
    of the directory reads every file name."""

    def __init__(self, directory: Path) -> None:
        self._lines = JsonLines(directory / ARRIVALS_FILE)
        self.times: list[float] = []

    def read(self) -> int:
        """Reads the new lines; returns how many messages arrived since the start."""
        self.times += [int(line.split(b"-", 1)[0]) / 1e9 for line in self._lines.new_lines()]
        return len(self.times)


def sms_arrivals(records: list[dict[str, Any]]) -> list[float]:
    """Wall-clock times (s) of the send requests the SMS stand-in answered 201, sorted."""
    return sorted(datetime.fromisoformat(r["at"]).timestamp() for r in records
                  if r.get("status") == 201)
