"""The SMS composer: exact encoding and parts for French text, transliteration, cutting."""

from __future__ import annotations

import pytest

from schemas.events import EventKind
from services.sms import format as sms

G, U = "GSM-7", "UCS-2"
NNBSP = "\u202f"

# (text, transliterate, expected text (None: unchanged), encoding, parts, UCS-2 characters)
CASES: list[tuple[str, bool, str | None, str, int, list[str]]] = [
    ("Route de Gray fermée", False, None, G, 1, []),
    ("Tempête : restez chez vous", False, None, U, 1, ["ê"]),
    ("Tempête : restez chez vous", True, "Tempete : restez chez vous", G, 1, []),
    ("Fête du village samedi", False, None, U, 1, ["ê"]),
    ("L’école est fermée", False, None, U, 1, ["’"]),
    ("L’école est fermée", True, "L'école est fermée", G, 1, []),
    ("« Marché de Noël »", False, None, U, 1, ["«", "ë", "»"]),
    ("«\u00a0Marché de Noël\u00a0»", True, '"Marché de Noel"', G, 1, []),
    (f"Coupure d’eau{NNBSP}!", True, "Coupure d'eau !", G, 1, []),
    (f"Météo{NNBSP}: vigilance orange{NNBSP}!", False, None, U, 1, [NNBSP]),
    ("Où est la salle des fêtes ?", True, "Où est la salle des fetes ?", G, 1, []),
    ("Ça commence à 20 h", False, None, G, 1, []),
    ("Leçon de français", False, None, U, 1, ["ç"]),
    ("Leçon de français", True, "Lecon de francais", G, 1, []),
    ("Cœur du village", False, None, U, 1, ["œ"]),
    ("Cœur du village", True, "Coeur du village", G, 1, []),
    ("Prix : 5 €", False, None, G, 1, []),
    ("Entrée libre [gratuit] {enfants} ~ ^ | \\", False, None, G, 1, []),
    ("Travaux rue de l'Église", False, None, G, 1, []),
    ("École fermée, déchèterie ouverte", False, None, G, 1, []),
    ("Île-de-France", False, None, U, 1, ["Î"]),
    ("Île-de-France", True, "Ile-de-France", G, 1, []),
    ("À partir de lundi", False, None, U, 1, ["À"]),
    ("À partir de lundi", True, "A partir de lundi", G, 1, []),
    ("Attention… danger", True, "Attention... danger", G, 1, []),
    ("Lundi – mardi — mercredi", True, "Lundi - mardi - mercredi", G, 1, []),
    ("Noël à l’église Saint‑Jean", True, "Noel à l'église Saint-Jean", G, 1, []),
    ("Aïe, la bûche", False, None, U, 1, ["ï", "û"]),
    ("Il fera 2 °C", True, "Il fera 2 °C", U, 1, ["°"]),
    ("Müller, Peña, Åsa", False, None, G, 1, []),
    ("Fête du village 🎉", False, None, U, 1, ["ê", "🎉"]),
    # Lengths at the limits.
    ("a" * 160, False, None, G, 1, []),
    ("a" * 161, False, None, G, 2, []),
    ("a" * 306, False, None, G, 2, []),
    ("a" * 307, False, None, G, 3, []),
    ("€" * 80, False, None, G, 1, []),  # 160 septets: € counts two
    ("€" * 81, False, None, G, 2, []),
    # 306 septets, but the escape sequence cannot straddle parts 1 and 2: three parts.
    ("a" * 152 + "€" + "a" * 152, False, None, G, 3, []),
    ("ê" * 70, False, None, U, 1, ["ê"]),
    ("ê" * 71, False, None, U, 2, ["ê"]),
    ("ê" * 134, False, None, U, 2, ["ê"]),
    ("ê" * 135, False, None, U, 3, ["ê"]),
    ("ê" + "a" * 69, False, None, U, 1, ["ê"]),
    ("ê" + "a" * 70, False, None, U, 2, ["ê"]),
    ("ê" + "a" * 159, True, "e" + "a" * 159, G, 1, []),
    # A surrogate pair (an emoji) is two units and never split: three parts, not two.
    ("a" * 66 + "🎉" + "a" * 66, False, None, U, 3, ["🎉"]),
    ("🎉" * 35, False, None, U, 1, ["🎉"]),
    ("Fête " * 30, False, None, U, 3, ["ê"]),
    ("Fête " * 30, True, "Fete " * 30, G, 1, []),
]


@pytest.mark.parametrize(("text", "translit", "expected", "encoding", "parts", "ucs2"), CASES)
def test_encoding_and_parts(text: str, translit: bool, expected: str | None, encoding: str,
                            parts: int, ucs2: list[str]) -> None:
    result = sms.prepare_text(text, translit)
    assert result.text == (text if expected is None else expected)
    assert str(result.encoding) == encoding
    assert result.parts == parts
    assert list(result.ucs2_characters) == ucs2
    # The parts really are what is counted, and put back together they are the text.
    assert len(sms.split(result.text)) == parts
    assert "".join(sms.split(result.text)) == result.text


def test_at_least_thirty_french_strings() -> None:
    assert len(CASES) >= 30


def test_no_part_exceeds_its_limit() -> None:
    for text in ("a" * 152 + "€" + "a" * 152, "€" * 200, "a" * 66 + "🎉" * 40, "ê" * 500):
        encoding = sms.encoding_of(text)
        for part in sms.split(text):
            assert sms.length(part, encoding) <= sms.LIMITS[encoding][1]


def test_a_short_notice_is_sent_whole_with_the_stop_mention() -> None:
    result = sms.compose_notice(
        kind=EventKind.PUBLISHED, commune_name="Lavoncourt", label="Alerte",
        title="Tempête : restez chez vous", body="Vents à 120 km/h attendus cette nuit.",
        link="http://x/n/1", stop="STOP au 36180", max_parts=3)
    assert result.text == ("Lavoncourt - Alerte : Tempete : restez chez vous\n"
                           "Vents à 120 km/h attendus cette nuit.\nSTOP au 36180")
    assert (str(result.encoding), result.parts, result.cut) == (G, 1, False)


def test_a_correction_says_so_and_a_withdrawal_is_short() -> None:
    corrected = sms.compose_notice(
        kind=EventKind.CORRECTED, commune_name="Lavoncourt", label="Travaux",
        title="Route fermée jusqu’au 5", body="Déviation par Gray.", link="L",
        stop="STOP", max_parts=3)
    assert corrected.text == ("Lavoncourt - Travaux - RECTIFICATIF : Route fermée jusqu'au 5\n"
                              "Déviation par Gray.\nSTOP")
    withdrawn = sms.compose_notice(
        kind=EventKind.WITHDRAWN, commune_name="Lavoncourt", label="Travaux",
        title="Route fermée", body="x" * 2000, link="L", stop="STOP", max_parts=3)
    assert withdrawn.text == "Lavoncourt - Travaux - ANNULÉ : Route fermée\nCet avis est annulé.\nSTOP"


@pytest.mark.parametrize("max_parts", [1, 2, 3, 5])
@pytest.mark.parametrize("body", ["Les travaux de voirie continuent. " * 40,
                                  "Fête à l’école ; venez nombreux 🎉 " * 40])
def test_a_long_notice_is_cut_to_max_parts_and_ends_with_the_link(body: str,
                                                                  max_parts: int) -> None:
    link = "https://crieur.example/n/70299/abcdef123456"
    result = sms.compose_notice(kind=EventKind.PUBLISHED, commune_name="Lavoncourt",
                                label="Information", title="Voirie", body=body, link=link,
                                stop="STOP au 36180", max_parts=max_parts)
    assert result.cut
    assert result.parts <= max_parts
    assert result.text.endswith(f"...\n{link}\nSTOP au 36180")
    # Cut at a word's end, and as long as it may be: one more word would not fit.
    kept = result.text.split("...\n")[0]
    assert not kept.endswith(" ")
    assert sms.parts(result.text.replace("...", " venez...", 1)) > max_parts or (
        result.parts == max_parts)


def test_without_transliteration_the_text_is_kept_and_costs_ucs2() -> None:
    result = sms.compose_notice(kind=EventKind.PUBLISHED, commune_name="Lavoncourt",
                                label="Alerte", title="Tempête", body="Restez chez vous.",
                                link="L", stop="STOP", max_parts=3, transliterated=False)
    assert result.text == "Lavoncourt - Alerte : Tempête\nRestez chez vous.\nSTOP"
    assert str(result.encoding) == U
    assert result.ucs2_characters == ("ê",)


def test_the_code_sms_is_one_part() -> None:
    result = sms.compose_code("482913", ["Lavoncourt"])
    assert result.text == ("Crieur : votre code de confirmation est 482913, valable 15 min. "
                           "Avis de : Lavoncourt")
    assert result.parts == 1
    many = sms.compose_code("482913", ["Saint-Rémy-en-Bouzemont-Saint-Genest-et-Isson"] * 5)
    assert many.text == "Crieur : votre code de confirmation est 482913, valable 15 min."
    assert sms.compose_code("482913", [], valid_s=600).text.endswith(", valable 10 min.")


def test_a_message_that_stays_ucs2_keeps_its_accents() -> None:
    stop = sms.stop_mention(None)
    kept_in_gsm7 = sms.compose_notice(
        kind=EventKind.PUBLISHED, commune_name="Lavoncourt", label="Alerte",
        title="Tempête", body="Restez chez vous.", link="", stop=stop, max_parts=3)
    assert kept_in_gsm7.text.endswith("\nRépondez STOP pour arreter")
    assert str(kept_in_gsm7.encoding) == G
    # An emoji has no GSM-7 stand-in: the message is UCS-2 anyway, accents cost nothing.
    ucs2 = sms.compose_notice(
        kind=EventKind.PUBLISHED, commune_name="Lavoncourt", label="Alerte",
        title="Tempête 🌬", body="Restez chez vous.", link="", stop=stop, max_parts=3)
    assert str(ucs2.encoding) == U
    assert ucs2.text == "Lavoncourt - Alerte : Tempête 🌬\nRestez chez vous.\nRépondez STOP pour arrêter"
    assert ucs2.ucs2_characters == ("🌬",)  # the one to blame, not the accents
    assert sms.prepare_text("Fête 🎄 à l’école").text == "Fête 🎄 à l’école"
