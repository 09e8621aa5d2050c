"""Numbers as French people write them, STOP in every spelling, quiet hours in Paris time."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from services.sms import quiet
from services.sms.phones import BadNumber, normalise, recipient_id
from services.sms.settings import SmsSettings, parse_hours
from services.sms.web import is_stop

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize("raw", ["06 12 34 56 78", "+33 6 12 34 56 78", "0033612345678",
                                 "06.12.34.56.78", "0612345678", "33612345678",
                                 "+33 (0)6 12 34 56 78"])
def test_numbers_as_written_in_france(raw: str) -> None:
    assert normalise(raw) == "+33612345678"


@pytest.mark.parametrize("raw", ["01 23 45 67 89", "12", "bonjour", "06 12 34"])
def test_numbers_that_cannot_get_sms(raw: str) -> None:
    with pytest.raises(BadNumber):
        normalise(raw)


def test_recipient_id_is_keyed_and_stable() -> None:
    assert recipient_id("a" * 40, "+33612345678") == recipient_id("a" * 40, "+33612345678")
    assert recipient_id("a" * 40, "+33612345678") != recipient_id("b" * 40, "+33612345678")
    assert "33612345678" not in recipient_id("a" * 40, "+33612345678")


@pytest.mark.parametrize("text", ["STOP", "stop", "Stop ", " STOP SMS", "stop sms", "Stôp",
                                  "S T O P", "STOP.", "Arrêt", "stopall"])
def test_stop_in_every_spelling(text: str) -> None:
    assert is_stop(text)


@pytest.mark.parametrize("text", ["", "Merci", "Stoppez les travaux", "Non"])
def test_other_replies_are_not_stop(text: str) -> None:
    assert not is_stop(text)


HOURS = (time(21), time(8))


@pytest.mark.parametrize(("at", "left"), [
    (datetime(2026, 12, 1, 20, 59, tzinfo=PARIS), 0.0),
    (datetime(2026, 12, 1, 21, 0, tzinfo=PARIS), 11 * 3600.0),
    (datetime(2026, 12, 1, 23, 30, tzinfo=PARIS), 8.5 * 3600),
    (datetime(2026, 12, 2, 7, 59, tzinfo=PARIS), 60.0),
    (datetime(2026, 12, 2, 8, 0, tzinfo=PARIS), 0.0),
    (datetime(2026, 12, 2, 12, 0, tzinfo=PARIS), 0.0),
    # The night the clocks go back (25 October 2026): 12 hours of quiet, not 11.
    (datetime(2026, 10, 24, 21, 0, tzinfo=PARIS), 12 * 3600.0),
])
def test_quiet_hours(at: datetime, left: float) -> None:
    assert quiet.seconds_left(at, HOURS) == left


def test_daytime_quiet_hours_and_none() -> None:
    assert quiet.seconds_left(datetime(2026, 12, 1, 13, 0, tzinfo=PARIS),
                              (time(12), time(14))) == 3600.0
    assert quiet.seconds_left(datetime(2026, 12, 1, 23, 0, tzinfo=PARIS), None) == 0.0
    assert parse_hours("") is None
    with pytest.raises(ValueError):
        parse_hours("21h-8h")


def test_provider_without_credentials_says_what_is_missing() -> None:
    settings = SmsSettings(sms_provider="ovh", sms_ovh_application_key="x")
    assert settings.missing() == ["CRIEUR_SMS_OVH_APPLICATION_SECRET",
                                  "CRIEUR_SMS_OVH_CONSUMER_KEY", "CRIEUR_SMS_OVH_SERVICE_NAME"]
    assert SmsSettings(sms_provider="brevo").missing() == ["CRIEUR_SMS_BREVO_API_KEY"]
    assert SmsSettings(sms_provider="brevo", sms_brevo_api_key="k").missing() == []


def test_categories_alerts_by_default_and_per_commune() -> None:
    settings = SmsSettings(sms_commune_categories={"70299": ["alerte", "travaux"]})
    assert [str(c) for c in settings.categories_for("70299")] == ["alerte", "travaux"]
    assert [str(c) for c in settings.categories_for("21231")] == ["alerte"]
