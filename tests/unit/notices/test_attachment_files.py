"""Attachments are judged by their content, and their names made safe to show and to send."""

from __future__ import annotations

import pytest

from services.notices.attachments import clean_filename, is_upload, sniff


@pytest.mark.parametrize(("data", "expected"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"%PDF-1.7\n", "application/pdf"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),  # a sound, though RIFF too
    (b"<svg xmlns='http://www.w3.org/2000/svg'>", None),  # scripts can hide in SVG
    (b"<html><body>%PDF-1.7", None),  # a PDF header must come first
    (b"GIF89a", None),
    (b"", None),
])
def test_the_type_is_read_from_the_first_bytes(data: bytes, expected: str | None) -> None:
    assert sniff(data) == expected


@pytest.mark.parametrize(("raw", "media_type", "expected"), [
    ("Arrêté n°12.pdf", "application/pdf", "Arrêté n°12.pdf"),
    ("photo.JPEG", "image/jpeg", "photo.JPEG"),
    ("C:\\Users\\mairie\\plan.png", "image/png", "plan.png"),
    ("../../etc/passwd", "application/pdf", "passwd.pdf"),
    ("rapport.exe", "application/pdf", "rapport.exe.pdf"),
    ("evil\r\nSet-Cookie: x.pdf", "application/pdf", "evilSet-Cookie: x.pdf"),
    ("\u200b\u200b.pdf", "application/pdf", "piece-jointe.pdf"),
    ("", "image/webp", "piece-jointe.webp"),
])
def test_a_name_has_no_path_no_control_character_and_the_right_extension(
        raw: str, media_type: str, expected: str) -> None:
    assert clean_filename(raw, media_type) == expected


def test_only_the_upload_route_takes_large_bodies() -> None:
    assert is_upload("/api/v1/communes/70299/attachments")
    assert not is_upload("/api/v1/communes/70299/notices")
    assert not is_upload("/communes/70299/attachments/0123456789abcdef")
