"""A phone's photo goes through the compose form: reduced, its location removed; a file too
large is refused in French, never with the API's JSON."""

from __future__ import annotations

import io
import os
import re

from PIL import Image

from tests.integration.staff.helpers import Office, page_csrf, shown, sign_in

DRAFT = {"category": "evenement", "title": "Marché de Noël", "body": "Sur la place, dès 10 h.",
         "when": "now", "publish_at": "", "starts_at": "", "ends_at": "",
         "link_url_0": "", "link_label_0": "", "link_url_1": "", "link_label_1": "",
         "link_url_2": "", "link_label_2": "", "key": "photo-1"}
GPS_IFD = 0x8825
ORIENTATION = 0x0112


def phone_photo() -> bytes:
    """A 4,000 × 3,000 JPEG over 5 MB, shot sideways, that says where it was taken."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # the phone was held upright: turn 90° to show it
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2], gps[3], gps[4] = "N", (47.0, 31.0, 12.0), "E", (5.0, 47.0, 3.0)
    # Noise does not compress: the file stays as large as a real photo.
    image = Image.frombytes("RGB", (4000, 3000), os.urandom(4000 * 3000 * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


async def test_a_large_photo_is_taken_reduced_and_without_its_location(office: Office) -> None:
    photo = phone_photo()
    assert len(photo) > 5_000_000
    async with office.browser() as http:
        assert (await sign_in(http, f"anne-{office.insee}")).status_code == 303
        token = await page_csrf(http, f"/staff/communes/{office.insee}/compose")
        fields = {k: (None, v) for k, v in (DRAFT | {"csrf": token}).items()}
        preview = await http.post(f"/staff/communes/{office.insee}/preview", files={
            **fields, "attachment": ("IMG_2041.jpg", photo, "image/jpeg")})
        assert preview.status_code == 200, preview.text[:500]
        assert preview.headers["content-type"].startswith("text/html")
        assert "IMG_2041.jpg" in shown(preview)
        (attachment_id,) = re.findall(r'name="attachment_ids" value="([a-z0-9]+)"',
                                      preview.text)
        download = await http.get(f"/communes/{office.insee}/attachments/{attachment_id}")
    assert download.status_code == 200
    stored = Image.open(io.BytesIO(download.content))
    assert stored.format == "JPEG"
    assert stored.size == (1500, 2000)  # upright, 2,000 px on the long side
    assert len(download.content) < len(photo)
    assert not stored.getexif().get_ifd(GPS_IFD)
    assert ORIENTATION not in stored.getexif()


async def test_a_file_over_the_limit_is_refused_in_french_keeping_the_form(
        office: Office) -> None:
    limit = office.app.state.context.settings.attachment_max_bytes
    just_over = b"%PDF-1.4\n" + b"0" * limit
    async with office.browser() as http:
        assert (await sign_in(http, f"anne-{office.insee}")).status_code == 303
        token = await page_csrf(http, f"/staff/communes/{office.insee}/compose")
        fields = {k: (None, v) for k, v in (DRAFT | {"csrf": token}).items()}
        refused = await http.post(f"/staff/communes/{office.insee}/preview", files={
            **fields, "attachment": ("programme.pdf", just_over, "application/pdf")})
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("text/html")
        assert "Le fichier est trop gros : 20 Mo au plus." in shown(refused)
        assert 'value="Marché de Noël"' in shown(refused)
        assert "Sur la place, dès 10 h." in shown(refused)

        # Far over: refused before the form is read, with a French page all the same.
        far_over = just_over + b"0" * 2_000_000
        page = await http.post(f"/staff/communes/{office.insee}/preview", files={
            **fields, "attachment": ("programme.pdf", far_over, "application/pdf")})
    assert page.status_code == 413
    assert page.headers["content-type"].startswith("text/html")
    assert "attachment_too_large" not in page.text
    assert "Fichier trop gros" in shown(page)
    assert "Revenez à la page précédente" in shown(page)
    assert "Se connecter" not in shown(page)  # the session is not read: say nothing of it


async def test_an_image_that_cannot_be_read_is_refused_in_french(office: Office) -> None:
    async with office.browser() as http:
        assert (await sign_in(http, f"anne-{office.insee}")).status_code == 303
        token = await page_csrf(http, f"/staff/communes/{office.insee}/compose")
        fields = {k: (None, v) for k, v in (DRAFT | {"csrf": token}).items()}
        refused = await http.post(f"/staff/communes/{office.insee}/preview", files={
            **fields, "attachment": ("photo.jpg", b"\xff\xd8\xff" + b"\0" * 500, "image/jpeg")})
    assert refused.status_code == 422
    assert "Cette image est illisible" in shown(refused)
    assert 'value="Marché de Noël"' in shown(refused)
