"""A secret generated once and kept in a file (mode 0600), for `make run` and tests."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def kept_secret(path: Path, nbytes: int = 32) -> str:
    """The secret in `path`, made on first use; processes starting together agree on one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    try:
        # O_EXCL: the first process writes it, every other one reads that one.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            text = path.read_text().strip()
            if text:
                return text
            import time

            time.sleep(0.02)  # written a moment ago by another process
        raise RuntimeError(f"{path} is empty") from None
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value
