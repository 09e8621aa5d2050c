"""How Crieur writes French for residents and staff: dates, times, numbers, counts, and the
catalogue of sentences more than one channel says.

One formatter for every channel (site, staff pages, email, SMS, Atom), so a notice reads
`19 décembre 2026 à 9 h 00` wherever it is read. Pure: no clock, no settings.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
# A no-break space: `9 h 00`, `18,2 s` and `3 abonnés` never split across lines.
NBSP = "\u00a0"

MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def day(moment: datetime, weekday: bool = False) -> str:
    """`1er décembre 2026`, `mardi 8 décembre 2026`, in Paris time."""
    local = moment.astimezone(PARIS)
    first = "1er" if local.day == 1 else str(local.day)
    said = f"{first}{NBSP}{MONTHS[local.month - 1]} {local.year}"
    return f"{WEEKDAYS[local.weekday()]} {said}" if weekday else said


def time_of_day(moment: datetime) -> str:
    """`9 h 00`, `19 h 15`: the hour without a leading zero, as a mairie writes it."""
    local = moment.astimezone(PARIS)
    return f"{local.hour}{NBSP}h{NBSP}{local.minute:02d}"


def date_time(moment: datetime, weekday: bool = False) -> str:
    """`19 décembre 2026 à 9 h 00` (with the weekday first if asked)."""
    return f"{day(moment, weekday)} à {time_of_day(moment)}"


def number(value: float, decimals: int = 1) -> str:
    """`18,2`, `3`, `1 250`: a decimal comma, no `,0`, thousands apart."""
    rounded = round(value, decimals)
    if rounded == int(rounded):
        return f"{int(rounded):,}".replace(",", NBSP)
    whole, _, fraction = f"{rounded:,.{decimals}f}".partition(".")
    return f"{whole.replace(',', NBSP)},{fraction.rstrip('0')}"


def seconds(value: float) -> str:
    """`18,2 s`."""
    return f"{number(value)}{NBSP}s"


def listed(items: list[str]) -> str:
    """`Lavoncourt`, `Lavoncourt et Gray`, `A, B et C`."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " et " + items[-1]


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """`0 abonné`, `1 téléphone`, `2 abonnés`: French takes the singular for 0 and 1."""
    word = singular if abs(count) < 2 else (plural or f"{singular}s")
    return f"{number(count)}{NBSP}{word}"


# -- The catalogue: sentences said by more than one channel or worth one wording ----------

# The end of every notice SMS (GSM-7 turns « arrêter » into « arreter »; UCS-2 keeps it).
STOP_TO_NUMBER = "STOP au {number}"
STOP_BY_REPLY = "Répondez STOP pour arrêter"
# The confirmation SMS: the code, and how long it may be typed.
CODE_SMS = "Crieur : votre code de confirmation est {code}, valable {minutes} min."
DELETE_CODE_SMS = ("Crieur : code {code} pour effacer votre inscription aux SMS, "
                   "valable {minutes} min.")
MANAGE_CODE_SMS = ("Crieur : code {code} pour modifier vos SMS, valable {minutes} min.")
# The answer to a STOP: the resident knows it worked.
STOP_CONFIRMED_SMS = ("Crieur : vous ne recevrez plus les avis de {communes} par SMS. "
                      "Votre numéro est effacé.")
# Said to a resident who left: « désabonné » fits no one, the sentence fits everyone.
UNSUBSCRIBED = "Désabonnement confirmé"
