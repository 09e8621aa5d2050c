"""Logs as operators read them: an exception logged by a library keeps its stack."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
import structlog

from crieur import log


def test_a_library_exception_is_logged_with_its_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    written = io.StringIO()
    monkeypatch.setattr(sys, "stderr", written)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        log.configure("INFO", "json")
        try:
            raise RuntimeError("the sign's driver fell over")
        except RuntimeError:
            # What uvicorn does with an exception in a request: stdlib logging, exc_info.
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        logging.getLogger("httpx").info("HTTP Request: GET https://x.fr/?token=secret")
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = handlers, level
    (line,) = [json.loads(x) for x in written.getvalue().splitlines()]
    assert "Traceback" in line["exception"] and "the sign's driver fell over" in line["exception"]
    assert "secret" not in written.getvalue(), "httpx's request lines (with URLs) are not logged"
