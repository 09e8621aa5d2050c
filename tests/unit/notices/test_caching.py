"""The render cache: one render per change, and a memory bound clients cannot push past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notices.caching import RenderCache, Rendered, accepts_gzip

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def test_an_answer_is_rendered_again_only_when_its_stamp_or_time_moves() -> None:
    cache = RenderCache()
    renders: list[int] = []

    async def render() -> tuple[Rendered, datetime | None]:
        renders.append(1)
        return Rendered(b"x" * 10, "text/plain"), NOW + timedelta(minutes=5)

    for _ in range(3):
        await cache.get("feed", 1, NOW, render)
    assert len(renders) == 1
    await cache.get("feed", 2, NOW, render)  # a new event
    await cache.get("feed", 2, NOW + timedelta(minutes=6), render)  # a notice ended
    assert len(renders) == 3


async def test_varying_the_key_never_holds_more_than_the_bound() -> None:
    cache = RenderCache(max_bytes=1000)

    async def render() -> tuple[Rendered, datetime | None]:
        return Rendered(b"x" * 300, "text/plain"), None

    for offset in range(100):
        await cache.get(("feed", offset), 1, NOW, render)
        assert cache._bytes <= 1000


@pytest.mark.parametrize(("header", "gzip"), [
    ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("*", True),
    ("gzip;q=0", False), ("identity", False), ("", False), ("gzip;q=abc", False),
])
def test_accept_encoding_is_read_with_its_weights(header: str, gzip: bool) -> None:
    assert accepts_gzip(header) is gzip
