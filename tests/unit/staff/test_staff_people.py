"""One person, every way in: what a person answers to, its state, and which sessions last."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notices.auth import Session, still_valid
from services.notices.staff import Person, StaffAccount, StaffMember

NOW = datetime.now(UTC)


def token(id_: str, communes: tuple[str, ...], revoked: bool = False) -> StaffMember:
    return StaffMember(id=id_, name="Élise Maire", communes=communes, created_at=NOW,
                       revoked_at=NOW + timedelta(minutes=1) if revoked else None)


def account(generation: int = 0, revoked: bool = False) -> StaffAccount:
    return StaffAccount(id="acc00001", login="elise-maire", name="Élise Maire",
                        communes=("70299",), password_hash="x", created_at=NOW,
                        password_set_at=NOW, session_generation=generation,
                        revoked_at=NOW + timedelta(minutes=2) if revoked else None)


ELISE = Person("Élise Maire", (token("tok00001", ("70299",)),
                               token("tok00002", ("70300",), revoked=True)), account())


@pytest.mark.parametrize("who", ["elise-maire", "Élise Maire", "tok00001", "tok00002",
                                 "acc00001"])
def test_a_person_answers_to_its_login_name_and_every_id(who: str) -> None:
    assert ELISE.answers_to(who)


@pytest.mark.parametrize("who", ["", "elise", "élise maire", "tok0000", "Anne Maire"])
def test_a_person_answers_to_nothing_else(who: str) -> None:
    assert not ELISE.answers_to(who)


def test_a_token_only_script_answers_to_the_login_it_would_have() -> None:
    script = Person("Élise Maire", (token("tok00001", ("70299",)),), None)
    assert script.answers_to("elise-maire") and script.ids == ("tok00001",)


def test_a_person_is_live_while_one_way_in_is_left_and_publishes_for_those_only() -> None:
    assert ELISE.revoked_at is None
    assert ELISE.communes == ("70299",)  # the revoked token's commune is gone
    gone = Person(ELISE.name, (token("tok00001", ("70299",), revoked=True),
                               token("tok00002", ("70300",), revoked=True)),
                  account(revoked=True))
    assert gone.revoked_at == NOW + timedelta(minutes=2)  # the last thing revoked
    assert gone.communes == ("70299", "70300")  # what it could, for the record


def test_a_session_lasts_only_under_its_accounts_generation() -> None:
    session = Session(login="elise-maire", csrf="c", created_at=NOW, generation=3)
    assert still_valid(session, account(generation=3))
    assert not still_valid(session, account(generation=4))  # password set again
    assert not still_valid(session, account(generation=3, revoked=True))
    assert not still_valid(session, None)
    older = Session.model_validate_json('{"login": "elise-maire", "csrf": "c", '
                                        f'"created_at": "{NOW.isoformat()}"}}')
    # A session opened before generations existed lasts until the first change.
    assert still_valid(older, account(generation=0))
