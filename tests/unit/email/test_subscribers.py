"""The subscriber index the fan-out reads: who follows what, active subscribers only."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

from crieur.channel.recipients import RecipientIndex
from services.email.subscribers import Follow, Subscriber, merge_follows

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def subscriber(*follows: tuple[str, tuple[str, ...]], confirmed: bool = True,
               suspended: bool = False) -> Subscriber:
    return Subscriber(email="x@example.org", confirmed=confirmed, suspended=suspended,
                      created_at=NOW, follows=tuple(
                          Follow.model_validate({"commune": c, "categories": cats})
                          for c, cats in follows))


def test_only_confirmed_and_not_suspended_subscribers_match() -> None:
    index = RecipientIndex[Subscriber]()
    index.put("a", subscriber(("70299", ("alerte", "travaux"))))
    index.put("b", subscriber(("70299", ("alerte",)), confirmed=False))
    index.put("c", subscriber(("70299", ("alerte",)), suspended=True))
    index.put("d", subscriber(("70300", ("alerte",))))
    assert index.matching("70299", "alerte") == ["a"]
    assert index.matching("70299", "travaux") == ["a"]
    assert index.matching("70299", "information") == []
    assert index.matching("70300", "alerte") == ["d"]


def test_a_change_or_a_departure_is_effective_at_once() -> None:
    index = RecipientIndex[Subscriber]()
    index.put("a", subscriber(("70299", ("alerte", "travaux"))))
    index.put("a", subscriber(("70299", ("travaux",))))
    assert index.matching("70299", "alerte") == []
    assert index.matching("70299", "travaux") == ["a"]
    index.put("a", None)
    assert index.matching("70299", "travaux") == []
    assert len(index) == 0


def test_follows_merge_per_commune() -> None:
    old = (Follow.model_validate({"commune": "70299", "categories": ["alerte"]}),)
    new = (Follow.model_validate({"commune": "70299", "categories": ["travaux", "alerte"]}),
           Follow.model_validate({"commune": "70001", "categories": ["evenement"]}))
    assert [(f.commune, [c.value for c in f.categories]) for f in merge_follows(old, new)] == [
        ("70001", ["evenement"]), ("70299", ["alerte", "travaux"])]


def test_a_hundred_thousand_subscribers_fit_well_within_200_mb() -> None:
    choices = [subscriber((f"{70000 + i % 50:05d}", ("alerte", "travaux")))
               for i in range(50)]
    tracemalloc.start()
    try:
        index = RecipientIndex[Subscriber]()
        for n in range(100_000):
            index.put(f"{n:032x}", choices[n % 50])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(index.matching("70007", "alerte")) == 2000
    assert peak < 100_000_000, f"{peak / 1e6:.0f} MB"


def test_the_index_keeps_the_address_of_active_subscribers_only() -> None:
    index = RecipientIndex[Subscriber]()
    index.put("a", subscriber(("70299", ("alerte",))))
    index.put("b", subscriber(("70299", ("alerte",)), suspended=True))
    assert index.active("a") == ("x@example.org", frozenset({("70299", "alerte")}))
    assert index.active("b") is None
    index.put("a", subscriber(("70299", ("alerte",)), suspended=True))
    assert index.active("a") is None, "a suspended address is not sent to from memory"
    index.put("a", None)
    assert index.active("a") is None
