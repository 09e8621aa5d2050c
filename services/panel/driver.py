"""Output port of the LED sign, and a driver that writes frames as PNG files.

The renderer only produces images; whatever lights the LEDs sits behind
`PanelDriver`. A real matrix driver (rpi-rgb-led-matrix on a Raspberry Pi
HAT, or a vendor controller such as a Novastar/Huidu/Linsn card fed over the
network) plugs in behind the same port by implementing `show`.
`PngFrameDriver` stands in for it during development, in tests and for a
web preview of what the sign is showing.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Protocol

from PIL import Image

from services.panel.render import Slide


class PanelDriver(Protocol):
    """Something that can put one frame on the sign."""

    async def show(self, frame: Image.Image, slide: Slide | None) -> None:
        """Display `frame`; `slide` is what it shows, None for a blank sign."""
        ...


class PngFrameDriver:
    """Writes the frame on show as `current.png`, atomically, in a directory."""

    def __init__(self, directory: Path | str, *, keep_frames: int = 0, scale: int = 1) -> None:
        if keep_frames < 0:
            raise ValueError("keep_frames must be >= 0")
        if scale < 1:
            raise ValueError("scale must be >= 1")
        self.directory = Path(directory)
        self.keep_frames = keep_frames  # how many numbered frames to keep (0: none)
        self.scale = scale  # nearest-neighbour upscaling, for a readable preview
        self._count = 0

    @property
    def current(self) -> Path:
        """Path of the file holding what the sign shows now."""
        return self.directory / "current.png"

    async def show(self, frame: Image.Image, slide: Slide | None) -> None:
        """Write the frame; file I/O runs in a thread so the event loop keeps going."""
        await asyncio.to_thread(self._write, frame)

    def _write(self, frame: Image.Image) -> None:
        """Write current.png (and a numbered copy if asked) without torn reads."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.scale != 1:
            frame = frame.resize(
                (frame.width * self.scale, frame.height * self.scale), Image.Resampling.NEAREST
            )
        self._count += 1
        if self.keep_frames:
            numbered = self.directory / f"frame-{self._count:06d}.png"
            self._atomic_save(frame, numbered)
            # Bounded history: a scrolling sign makes dozens of frames a second.
            stale = self.directory / f"frame-{self._count - self.keep_frames:06d}.png"
            stale.unlink(missing_ok=True)
        self._atomic_save(frame, self.current)

    def _atomic_save(self, frame: Image.Image, target: Path) -> None:
        """Save to a temp file in the same directory, then rename over `target`."""
        # Same directory so os.replace is a rename on one filesystem: a reader
        # (web preview, file watcher) sees the old or the new PNG, never half.
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".png")
        try:
            with os.fdopen(fd, "wb") as out:
                frame.save(out, format="PNG")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
