"""What the sinks received, read from the stand-ins' own records (files), cheaply and often."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any


def count_mail(directory: Path) -> int:
    """Messages the SMTP stand-in stored (one .eml file each)."""
    if not directory.exists():
        return 0
    with os.scandir(directory) as entries:
        return sum(1 for e in entries if e.name.endswith(".eml"))


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


def mail_arrivals(directory: Path, since_ns: int) -> list[float]:
    """Wall-clock arrival times (s) of the messages stored since `since_ns`, sorted: the SMTP
    stand-in names each file by its arrival (`<time_ns>-<n>.eml`)."""
    if not directory.exists():
        return []
    found = []
    with os.scandir(directory) as entries:
        for e in entries:
            if e.name.endswith(".eml"):
                ns = int(e.name.split("-", 1)[0])
                if ns >= since_ns:
                    found.append(ns / 1e9)
    return sorted(found)


def sms_arrivals(records: list[dict[str, Any]]) -> list[float]:
    """Wall-clock times (s) of the send requests the SMS stand-in answered 201, sorted."""
    return sorted(datetime.fromisoformat(r["at"]).timestamp() for r in records
                  if r.get("status") == 201)
