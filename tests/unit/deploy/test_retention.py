"""Retention limits: what grows with use has a ceiling, and the store is big enough for it."""

from __future__ import annotations

import re

from nats.js.api import DiscardPolicy

from crieur.provision import definitions
from schemas.streams import DAY, DEADLETTERS, DELIVERIES, JOBS
from tests.helpers import repo_root


def test_growing_streams_have_an_age_and_a_size_ceiling() -> None:
    for stream in (DELIVERIES, JOBS, DEADLETTERS):
        assert stream.max_age and stream.max_age <= 90 * DAY, stream.name
        assert stream.max_bytes and stream.max_bytes > 0, stream.name
    # Old reports and letters make room; a queued job is never dropped for a new one.
    assert DELIVERIES.discard == DiscardPolicy.OLD
    assert DEADLETTERS.discard == DiscardPolicy.OLD
    assert JOBS.discard == DiscardPolicy.NEW


def test_the_production_store_holds_every_ceiling_with_room_left() -> None:
    units = {"GB": 1024**3, "TB": 1024**4}
    for config in ("nats-server.conf", "cluster.conf"):
        text = (repo_root() / "deploy" / "nats" / config).read_text()
        found = re.search(r"max_file_store: (\d+)(GB|TB)", text)
        assert found, config
        store = int(found.group(1)) * units[found.group(2)]
        ceilings = sum(s.max_bytes or 0 for s in (DELIVERIES, JOBS, DEADLETTERS))
        # What is left is for NOTICES (kept forever) and the buckets.
        assert store - ceilings >= 4 * 1024**3, config


def test_every_reserved_ceiling_fits_in_the_production_store() -> None:
    # NATS reserves each stream's and bucket's max_bytes in max_file_store when it creates
    # it: past the store, `crieur provision` fails. NOTICES and the buckets without a
    # ceiling share what is left.
    found = definitions()
    reserved = (sum(s.max_bytes or 0 for s in found.streams)
                + sum(b.max_bytes for b in found.buckets))
    for config in ("nats-server.conf", "cluster.conf"):
        text = (repo_root() / "deploy" / "nats" / config).read_text()
        match = re.search(r"max_file_store: (\d+)GB", text)
        assert match, config
        assert int(match.group(1)) * 1024**3 - reserved >= 2 * 1024**3, config
