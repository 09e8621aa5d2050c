"""Phone numbers: as French people write them in, E.164 out; keyed ids for everything else."""

from __future__ import annotations

import hashlib
import hmac

import phonenumbers
from phonenumbers import PhoneNumberType

# Numbers that can receive an SMS (a landline cannot).
_TEXTABLE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


# Where a code or a notice SMS is sent by default: mobiles of metropolitan France and of
# the overseas departments and collectivities that share the French numbering plan's
# mobile tariffs (Guadeloupe, Martinique, Guyane, La Réunion, Mayotte, Saint-Pierre-et-
# Miquelon, Saint-Barthélemy, Saint-Martin). New Caledonia (NC), French Polynesia (PF) and
# Wallis-et-Futuna (WF) have their own operators and are billed by French SMS providers as
# international destinations: a commune there adds them to CRIEUR_SMS_COUNTRIES.
FRENCH_MOBILE_REGIONS = ("FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")


class BadNumber(ValueError):
    """Not a number an SMS can reach; the message is French, for the resident."""


class ForeignNumber(BadNumber):
    """A mobile number of a country or territory this service does not send SMS to."""


def parse_regions(text: str) -> frozenset[str]:
    """"FR, GP,re" -> {"FR", "GP", "RE"}; ValueError for a code phonenumbers does not know."""
    regions = frozenset(p.strip().upper() for p in text.split(",") if p.strip())
    unknown = sorted(regions - phonenumbers.SUPPORTED_REGIONS)
    if unknown:
        raise ValueError(f"unknown region codes (ISO 3166-1 alpha-2 expected): {unknown}")
    if not regions:
        raise ValueError("at least one region code is needed, e.g. FR")
    return regions


def normalise(raw: str, region: str = "FR", allowed: frozenset[str] | None = None) -> str:
    """"06 12 34 56 78", "+33 6 12 34 56 78", "0033612345678" -> "+33612345678".

    `allowed`: the regions a number may belong to (ForeignNumber otherwise); None: any.
    """
    text = raw.strip()
    # Providers give the number back without '+' ("33612345678"): international, then.
    if text.isdigit() and not text.startswith("0") and len(text) > 10:
        text = "+" + text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise BadNumber("numéro de téléphone illisible") from error
    if not phonenumbers.is_valid_number(number):
        raise BadNumber("numéro de téléphone invalide")
    if phonenumbers.number_type(number) not in _TEXTABLE:
        raise BadNumber("ce numéro ne peut pas recevoir de SMS (il faut un portable)")
    if allowed is not None and phonenumbers.region_code_for_number(number) not in allowed:
        raise ForeignNumber("nous n’envoyons de SMS qu’aux portables de France "
                            "(métropole et outre-mer)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def number_prefix(e164: str, digits: int = 3) -> str:
    """"+33612345678" -> "33612": the country code and the first digits of the national
    number, the range a budget of code SMS is counted by (digits only: a KV key)."""
    number = phonenumbers.parse(e164)
    national = phonenumbers.national_significant_number(number)
    return f"{number.country_code}{national[:digits]}"


def recipient_id(key: str, e164: str) -> str:
    """The subscriber's id everywhere but the registry's value: a keyed hash of the number."""
    return hmac.new(key.encode(), b"sms:" + e164.encode(), hashlib.sha256).hexdigest()[:40]


def code_hash(key: str, rid: str, code: str) -> str:
    return hmac.new(key.encode(), f"code:{rid}:{code}".encode(), hashlib.sha256).hexdigest()
