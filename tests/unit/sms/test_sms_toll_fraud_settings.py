"""What a resident's request is limited by, and settings refused at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crieur.channel.ratelimit import client_key
from services.sms.phones import ForeignNumber, normalise, number_prefix
from services.sms.settings import SmsSettings


def test_an_ipv6_client_is_its_slash_64_and_ipv4_its_address() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:0db8:1:2:ffff::9") \
        == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("203.0.113.5") == "203.0.113.5"
    assert client_key("::ffff:203.0.113.5") == "203.0.113.5", "IPv4 written as IPv6"
    assert client_key("") == ""


def test_numbers_are_checked_against_the_allowed_regions_only_when_asked() -> None:
    french = frozenset({"FR", "GP"})
    assert normalise("+590 690 12 34 56", allowed=french) == "+590690123456"
    with pytest.raises(ForeignNumber):
        normalise("+234 802 123 4567", allowed=french)
    # A STOP from a number subscribed under a wider setting is still understood.
    assert normalise("2348021234567") == "+2348021234567"
    assert number_prefix("+33612345678") == "33612"
    assert number_prefix("+262692123456") == "262692"


@pytest.mark.parametrize("setting", [
    {"sms_countries": "FR,XX"}, {"sms_countries": " , "}, {"sms_code_budget": "200"},
    {"sms_code_budget": "0,5"}, {"sms_code_budget": "a,b"},
    {"trusted_proxies": "10.0.0.0/8, proxy.example"}])
def test_an_impossible_setting_is_refused_at_start(setting: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        SmsSettings(**setting)  # type: ignore[arg-type]


def test_the_defaults_serve_french_mobiles_and_trust_no_proxy() -> None:
    settings = SmsSettings()
    assert settings.countries() == {"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF"}
    assert settings.code_budget() == (200, 20)
    assert settings.proxies() == ()
    assert SmsSettings(sms_countries="fr, nc").countries() == {"FR", "NC"}
