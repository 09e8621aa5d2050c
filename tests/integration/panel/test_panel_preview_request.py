"""The sign answers a staff preview of its commune's drafts with its own rendering."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import nats.errors
import pytest
from PIL import Image

from schemas import Category, subjects
from schemas.previews import PreviewRequest
from services.panel.app import Panel
from services.panel.preview import PREVIEW_SCALE
from tests.integration.panel.helpers import Mairie, eventually, make_notice, panel_settings

pytestmark = pytest.mark.integration


async def test_the_sign_draws_a_draft_of_its_commune_as_it_would_show_it(
        nats_url: str, mairie: Mairie, tmp_path: Path) -> None:
    panel = Panel(panel_settings(nats_url, mairie.commune, tmp_path))
    await panel.start()
    try:
        await eventually(lambda: panel.connected, "the sign connected")
        draft = make_notice(mairie.commune, "brouillon01", Category.ALERTE,
                            title="Tempête : restez chez vous, vents violents attendus")
        request = PreviewRequest(commune=mairie.commune, commune_name="Lavoncourt",
                                 notice=draft)

        async def answered() -> dict[str, object] | None:
            try:
                msg = await mairie.nc.request(
                    subjects.channel_preview("panel", mairie.commune),
                    request.model_dump_json().encode(), timeout=5)
            except nats.errors.NoRespondersError:
                return None
            answer: dict[str, object] = json.loads(msg.data)
            return answer

        await eventually(answered, "the sign answering previews")
        answer = await answered()
        assert answer is not None and answer["available"] is True
        image = Image.open(io.BytesIO(base64.b64decode(str(answer["image_png_base64"]))))
        assert image.format == "PNG"
        assert image.height == 32 * PREVIEW_SCALE
        # A long title scrolls: the strip is wider than the 128-LED sign.
        assert image.width > 128 * PREVIEW_SCALE
        assert int(str(answer["frames"])) == 128 - 1 + image.width // PREVIEW_SCALE
        assert (answer["width"], answer["height"]) == (128, 32)
        assert float(str(answer["scroll_seconds"])) > 0
        # The alert bar is red on an RGB sign, amber here: the top-left LED is lit.
        assert image.getpixel((0, 0)) != (0, 0, 0)
        # Nothing of the draft reached the sign itself.
        assert panel.current()["notices"] == []
        # Another commune's drafts are not this sign's to draw.
        with pytest.raises(nats.errors.NoRespondersError):
            await mairie.nc.request(subjects.channel_preview("panel", "2A004"),
                                    request.model_dump_json().encode(), timeout=2)
    finally:
        await panel.stop()
