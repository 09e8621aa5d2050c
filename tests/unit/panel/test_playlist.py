"""The playlist: what the sign shows, and in which order, at any instant of a hand-moved clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas import (
    Category,
    Notice,
    NoticeCorrected,
)
from schemas.notice import PARIS
from services.panel.playlist import BlankHours, Playlist, heading, sign_text
from tests.unit.panel.helpers import COMMUNE, NOON, Clock, notice, published, withdrawn


def ids(notices: list[Notice]) -> list[str]:
    return [n.id for n in notices]


def fed(*notices: Notice, blank: str = "") -> Playlist:
    playlist = Playlist(COMMUNE, BlankHours.parse(blank))
    for n in notices:
        assert playlist.apply(published(n))
    return playlist


def test_others_come_newest_first() -> None:
    older = notice("older000", published=NOON - timedelta(days=2))
    newer = notice("newer000", published=NOON - timedelta(hours=2))
    # starts_at counts as the notice's date when it has one.
    started = notice("started0", published=NOON - timedelta(days=5),
                     starts_at=NOON - timedelta(minutes=5))
    playlist = fed(older, newer, started)
    assert ids(playlist.items(NOON)) == ["started0", "newer000", "older000"]


def test_alerts_come_first_and_between_every_other_notice() -> None:
    alert = notice("alerte00", Category.ALERTE, published=NOON - timedelta(days=3))
    others = [notice(f"autre{i:03d}", Category.TRAVAUX, published=NOON - timedelta(hours=i))
              for i in range(1, 4)]
    playlist = fed(*others, alert)
    assert ids(playlist.current(NOON)) == ["alerte00", "autre001", "autre002", "autre003"]
    assert ids(playlist.items(NOON)) == [
        "alerte00", "autre001", "alerte00", "autre002", "alerte00", "autre003",
    ]


def test_several_alerts_take_turns_and_none_is_starved() -> None:
    a1 = notice("alerte01", Category.ALERTE, published=NOON - timedelta(hours=1))
    a2 = notice("alerte02", Category.ALERTE, published=NOON - timedelta(hours=2))
    a3 = notice("alerte03", Category.ALERTE, published=NOON - timedelta(hours=3))
    other = notice("autre001", Category.EVENEMENT)
    items = ids(fed(a3, other, a1, a2).items(NOON))
    assert items == ["alerte01", "autre001", "alerte02", "alerte03"]
    only_alerts = ids(fed(a2, a1).items(NOON))
    assert only_alerts == ["alerte01", "alerte02"]


def test_a_notice_appears_at_its_start_and_goes_at_its_end() -> None:
    clock = Clock(NOON)
    window = notice("fenetre0", starts_at=NOON + timedelta(hours=1),
                    ends_at=NOON + timedelta(hours=2))
    playlist = fed(window)
    assert playlist.items(clock()) == []
    assert playlist.next_change(clock()) == NOON + timedelta(hours=1)
    clock.advance(hours=1)
    assert ids(playlist.items(clock())) == ["fenetre0"], "shown from starts_at inclusive"
    clock.advance(minutes=59, seconds=59)
    assert ids(playlist.items(clock())) == ["fenetre0"]
    clock.advance(seconds=1)
    assert playlist.items(clock()) == [], "gone at ends_at"
    assert playlist.forget_expired(clock()) == ["fenetre0"]
    assert playlist.known() == []


def test_withdrawal_removes_at_once_and_a_replayed_publication_does_not_bring_it_back() -> None:
    road = notice("route000", Category.TRAVAUX)
    fair = notice("foire000", Category.EVENEMENT)
    playlist = fed(road, fair)
    assert set(ids(playlist.items(NOON))) == {"route000", "foire000"}
    assert playlist.apply(withdrawn(road))
    assert ids(playlist.items(NOON)) == ["foire000"]
    assert not playlist.apply(published(road)), "an older event replayed is ignored"
    assert ids(playlist.items(NOON)) == ["foire000"]


def test_a_correction_replaces_the_notice_and_an_older_version_is_ignored() -> None:
    v1 = notice("route000", Category.TRAVAUX)
    playlist = fed(v1)
    v2 = notice("route000", Category.ALERTE, version=2, title="Route de Gray fermée jusqu’au 5")
    assert playlist.apply(NoticeCorrected(occurred_at=NOON, notice=v2))
    [shown] = playlist.items(NOON)
    assert (shown.version, shown.title, shown.category) == (
        2, "Route de Gray fermée jusqu’au 5", Category.ALERTE)
    assert playlist.shows("route000", 2, NOON) and not playlist.shows("route000", 1, NOON)
    assert not playlist.apply(published(v1))
    assert playlist.items(NOON)[0].version == 2
    # A correction that moves the end into the past takes the notice off.
    v3 = notice("route000", version=3, ends_at=NOON - timedelta(minutes=1),
                starts_at=NOON - timedelta(hours=3))
    assert playlist.apply(NoticeCorrected(occurred_at=NOON, notice=v3))
    assert playlist.items(NOON) == []


def test_notices_of_another_commune_are_ignored() -> None:
    playlist = fed()
    stranger = notice("ailleurs", commune="21231")
    assert not playlist.apply(published(stranger))
    assert playlist.items(NOON) == []


def test_blank_hours_show_only_alerts_across_midnight() -> None:
    info = notice("info0000", published=datetime(2025, 12, 1, 9, tzinfo=PARIS))
    alert = notice("alerte00", Category.ALERTE, published=datetime(2025, 12, 1, 9, tzinfo=PARIS))
    playlist = fed(info, alert, blank="23:00-06:00")

    def at(hour: int, minute: int = 0, day: int = 2) -> list[str]:
        return ids(playlist.items(datetime(2025, 12, day, hour, minute, tzinfo=PARIS)))

    assert at(22, 59) == ["alerte00", "info0000"]
    assert at(23, 0) == ["alerte00"], "dark from 23:00 inclusive, alerts excepted"
    assert at(0, 30, day=3) == ["alerte00"], "still dark after midnight"
    assert at(5, 59, day=3) == ["alerte00"]
    assert at(6, 0, day=3) == ["alerte00", "info0000"], "lit again at 06:00"
    assert playlist.is_blank(datetime(2025, 12, 2, 23, 30, tzinfo=PARIS))
    assert not playlist.is_blank(datetime(2025, 12, 2, 12, 0, tzinfo=PARIS))


def test_blank_hours_follow_paris_wall_clock_through_dst() -> None:
    playlist = fed(notice("info0000", published=datetime(2025, 3, 1, tzinfo=PARIS)),
                   blank="23:00-06:00")
    # 30 March 2025: clocks go from 02:00 to 03:00 in Paris. 05:30 local is 03:30 UTC
    # (UTC+2) after the change; 04:30 UTC is 06:30 local, lit.
    assert playlist.items(datetime(2025, 3, 30, 3, 30, tzinfo=UTC)) == []
    assert ids(playlist.items(datetime(2025, 3, 30, 4, 30, tzinfo=UTC))) == ["info0000"]
    # In winter (UTC+1) 04:30 UTC is 05:30 local: still dark.
    assert playlist.items(datetime(2025, 1, 15, 4, 30, tzinfo=UTC)) == []
    # Summer evening: 21:30 UTC is 23:30 local, dark; 20:30 UTC is 22:30, lit.
    assert playlist.items(datetime(2025, 7, 1, 21, 30, tzinfo=UTC)) == []
    assert ids(playlist.items(datetime(2025, 7, 1, 20, 30, tzinfo=UTC))) == ["info0000"]


def test_blank_hours_within_a_day_and_never() -> None:
    daytime = BlankHours.parse("13:00-14:00")
    assert daytime is not None
    assert daytime.contains(datetime(2025, 12, 2, 13, 30, tzinfo=PARIS))
    assert not daytime.contains(datetime(2025, 12, 2, 14, 0, tzinfo=PARIS))
    assert not daytime.contains(datetime(2025, 12, 2, 23, 30, tzinfo=PARIS))
    assert BlankHours.parse("") is None
    assert not fed(blank="").is_blank(datetime(2025, 12, 2, 3, 0, tzinfo=PARIS))
    for bad in ("23h-6h", "25:00-06:00", "06:00-06:00"):
        with pytest.raises(ValueError):
            BlankHours.parse(bad)


def test_a_dump_restores_the_same_playlist_and_retain_forgets_the_rest() -> None:
    a = notice("aaaaaaaa", Category.ALERTE)
    b = notice("bbbbbbbb", ends_at=NOON + timedelta(days=1))
    c = notice("cccccccc")
    original = fed(a, b, c)
    original.apply(withdrawn(c))
    restored = Playlist(COMMUNE)
    restored.load(original.dump())
    assert ids(restored.items(NOON)) == ids(original.items(NOON)) == ["aaaaaaaa", "bbbbbbbb"]
    assert not restored.apply(published(c)), "the withdrawal is remembered too"
    assert restored.retain({"bbbbbbbb"})
    assert ids(restored.items(NOON)) == ["bbbbbbbb"]


def test_what_the_sign_says() -> None:
    alert = notice("alerte00", Category.ALERTE, ends_at=datetime(2025, 12, 4, 18, tzinfo=PARIS))
    assert heading(alert) == "ALERTE"
    assert heading(notice("evt00000", Category.EVENEMENT)) == "Événement"
    assert sign_text(alert) == "Avis alerte00 — jusqu’au 4 déc. 18 h"
    assert sign_text(notice("info0000")) == "Avis info0000"


def test_a_notice_with_a_photo_shows_its_title_on_the_sign() -> None:
    # The sign has no room for a picture: its title says it, as for any other notice.
    photo = {"name": "Pont.jpg", "url": "https://crieur.example/communes/70299/attachments/"
             "abcdef0123456789", "media_type": "image/jpeg", "id": "abcdef0123456789"}
    shown = notice("photo000", Category.TRAVAUX, title="Pont fermé", attachments=[photo])
    assert shown.images and sign_text(shown) == "Pont fermé"
    assert ids(fed(shown).items(NOON)) == ["photo000"]
