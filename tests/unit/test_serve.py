"""crieur.serve: every service tunes its garbage collector once start-up is done."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import uvicorn

from crieur import serve


def test_settle_heap_takes_start_up_objects_out_of_later_collections() -> None:
    # In a process of its own: freezing this test process's heap would outlive the test.
    code = ("import gc, crieur.serve as s; import services.email.service;"
            "tracked, frozen = len(gc.get_objects()), gc.get_freeze_count(); s.settle_heap();"
            "print(tracked, frozen, len(gc.get_objects()), gc.get_freeze_count(),"
            " *gc.get_threshold())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    tracked, frozen_before, tracked_after, frozen, young, *older = map(int, out)
    assert frozen_before == 0
    # What start-up built (tens of thousands of objects) is frozen, and what a collection
    # still walks is a small remainder.
    assert frozen > 20_000
    assert tracked_after < tracked / 10
    assert young == serve.YOUNG_COLLECTION_EVERY
    assert older == [10, 10]  # CPython's own for the older generations, unchanged


def test_serve_settles_the_heap_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(serve, "settle_heap", lambda: calls.append("settle_heap"))

    def run(server: uvicorn.Server, *args: Any, **kwargs: Any) -> None:
        calls.append("uvicorn.Server.run")
        server.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    app: Any = object()
    serve.serve(app, "127.0.0.1", 0, grace_s=1)
    assert calls == ["settle_heap", "uvicorn.Server.run"]
