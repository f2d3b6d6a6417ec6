"""Keeping results on disk, so nothing is lost when a browser tab closes."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from PIL import Image

from .recipe import Recipe, png_bytes


class OutputStore:
    """Writes each result as a dated PNG with its recipe; a file appears whole or not at all."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser().resolve()

    def save(self, image: Image.Image, recipe: Recipe) -> Path:
        day = self.folder / time.strftime("%Y-%m-%d")
        day.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%H%M%S')}-{recipe.task}-{recipe.seed}-{recipe.image_id}.png"
        with tempfile.NamedTemporaryFile(dir=day, prefix=".partial-", suffix=".png", delete=False) as f:
            f.write(png_bytes(image, recipe))
        os.replace(f.name, day / name)
        return day / name
