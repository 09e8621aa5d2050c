"""Phone numbers: as French people write them in, E.164 out; keyed ids for everything else."""

from __future__ import annotations

import hashlib
import hmac

import phonenumbers
from phonenumbers import PhoneNumberType

# Numbers that can receive an SMS (a landline cannot).
_TEXTABLE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


class BadNumber(ValueError):
    """Not a number an SMS can reach; the message is French, for the resident."""


def normalise(raw: str, region: str = "FR") -> str:
    """"06 12 34 56 78", "+33 6 12 34 56 78", "0033612345678" -> "+33612345678"."""
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
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def recipient_id(key: str, e164: str) -> str:
    """The subscriber's id everywhere but the registry's value: a keyed hash of the number."""
    return hmac.new(key.encode(), b"sms:" + e164.encode(), hashlib.sha256).hexdigest()[:40]


def code_hash(key: str, rid: str, code: str) -> str:
    return hmac.new(key.encode(), f"code:{rid}:{code}".encode(), hashlib.sha256).hexdigest()
