"""The LED sign's settings (environment variables prefixed CRIEUR_PANEL_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from crieur.settings import CommonSettings
from schemas.commune import Insee


class PanelSettings(CommonSettings):
    # The web sign and /playlist; 127.0.0.1 so a sign is not exposed unless asked.
    panel_http_host: str = "127.0.0.1"
    panel_http_port: int = 8081
    # The commune whose notices this sign shows (one sign, one commune).
    panel_commune: Insee = "70299"
    # The sign's name in delivery reports (`target`), so staff can tell two signs apart.
    panel_name: str = Field(default="panneau", min_length=1, max_length=200)
    # LEDs across x LEDs down, e.g. 128x32, 192x64, 96x16.
    panel_size: str = "128x32"
    # The LED colour of a one-colour sign (amber by default).
    panel_color: str = "#ffb000"
    # A full-colour sign: alerts in red, headings in cyan.
    panel_rgb: bool = False
    # Europe/Paris hours when the sign stays dark except for alerts; empty = never dark.
    panel_blank_hours: str = "23:00-06:00"
    # How long a slide stays at least; scrolling text always scrolls through once.
    panel_slide_seconds: float = Field(default=8.0, gt=0)
    # Scrolling speed in LEDs per second (one frame per LED step).
    panel_scroll_speed: float = Field(default=24.0, gt=0)
    # Where current.png and the playlist snapshot live; default <data_dir>/panel.
    panel_frames_dir: Path | None = None
    # current.png is rewritten at most this often (an SD card does not like 24 writes a
    # second); 0 turns the PNG writer off.
    panel_png_interval_s: float = Field(default=1.0, ge=0)
    # A notice still on the sign is reported on DELIVERIES this often (plus once when it leaves).
    panel_report_interval_s: float = Field(default=300.0, gt=0)

    @field_validator("panel_size")
    @classmethod
    def _size_parses(cls, value: str) -> str:
        from services.panel.render import PanelSpec

        PanelSpec.from_string(value)
        return value

    @field_validator("panel_blank_hours")
    @classmethod
    def _blank_hours_parse(cls, value: str) -> str:
        from services.panel.playlist import BlankHours

        BlankHours.parse(value)
        return value

    @property
    def frames_dir(self) -> Path:
        return self.panel_frames_dir or self.data_dir / "panel"
