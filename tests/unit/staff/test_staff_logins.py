"""Logins, passwords and the staff pages' pure helpers."""

from __future__ import annotations

import pytest

from services.notices.auth import same
from services.notices.staff import WeakPassword, check_password, login_of
from services.notices.staff_pages import french_error, highlight, reach_lines, safe_next


@pytest.mark.parametrize(("name", "login"), [
    ("Secrétariat de mairie (démo)", "secretariat-de-mairie-demo"),
    ("  Élise  MARTIN ", "elise-martin"),
    ("secretariat-de-mairie-demo", "secretariat-de-mairie-demo"),
    ("Ø", ""),
])
def test_a_name_makes_a_login_that_is_also_a_kv_key(name: str, login: str) -> None:
    assert login_of(name) == login


def test_passwords_too_short_or_absurdly_long_are_refused() -> None:
    with pytest.raises(WeakPassword):
        check_password("court")
    with pytest.raises(WeakPassword):
        check_password("x" * 1025)
    assert check_password("un mot de passe long") == "un mot de passe long"


def test_tokens_compare_and_an_empty_one_never_matches() -> None:
    assert same("abc", "abc")
    assert not same("abc", "abd")
    assert not same("", "")


@pytest.mark.parametrize(("value", "kept"), [
    ("/staff/communes/70299", "/staff/communes/70299"),
    ("https://evil.example/staff", "/staff"),
    ("//evil.example/staff", "/staff"),
    ("/staff\\@evil", "/staff"),
    ("", "/staff"),
])
def test_after_sign_in_only_a_staff_page_is_a_destination(value: str, kept: str) -> None:
    assert safe_next(value) == kept


def test_the_sms_text_is_escaped_and_its_long_characters_marked() -> None:
    shown = str(highlight("Vents ≥ 120 <b>", ["≥"]))
    assert shown == 'Vents <mark class="long">≥</mark> 120 &lt;b&gt;'


def test_reach_is_said_per_channel_in_french_leaving_zeros_out() -> None:
    lines = reach_lines({
        "push": {"sent": 1, "failed": 0, "topics": {"crieur-70299-alerte": 1}},
        "email": {"sent": 4, "bounced": 1, "failed": 0, "people": 2},
        "sms": {"sent": 1, "delivered": 0, "people": 1},
        "panel": {"shown": 3, "shown_seconds": 125.0},
        "complete": True,
    })
    assert lines == [
        "Notifications : 1 message envoyé, par type d'avis suivi : Alerte 1",
        # People reached, each once; then the messages (a correction is sent again).
        "E-mails : 2 personnes jointes (4 messages envoyés, 1 rejeté)",
        "SMS : 1 personne jointe (1 message envoyé)",
        "Panneau lumineux : 3 affichages, 2\u00a0min\u00a005\u00a0s à l'affichage",
    ]


def test_form_errors_are_said_in_french() -> None:
    assert french_error({"type": "missing"}) == "Ce champ est obligatoire."
    assert french_error({"type": "url_parsing"}).startswith("Cette adresse web")
    assert french_error({"type": "value_error",
                         "msg": "Value error, ends_at must be after starts_at"}) == \
        "La fin doit venir après le début de validité."
