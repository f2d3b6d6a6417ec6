"""Keeping results on disk, so nothing is lost when a browser tab closes; and scratch folders for the
files a job makes besides its PNGs (Morph's GIF and MP4)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from .recipe import Recipe, png_bytes

KEEP_SCRATCH = 32  # job folders kept on disk; older ones are removed


class OutputStore:
    """Writes each job's results into a dated folder under one time stamp: its PNGs with their recipes,
    numbered in the order the job made them (a morph's frames sort as they play), and its other files
    (a morph's GIF and MP4). A file appears whole or not at all."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser().resolve()

    def save(self, images: list[Image.Image], recipes: list[Recipe], files: dict[str, str]) -> list[Path]:
        day = self.folder / time.strftime("%Y-%m-%d")
        day.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%H%M%S")
        saved = []
        for number, (image, recipe) in enumerate(zip(images, recipes), 1):
            name = f"{stamp}-{recipe.task}-{recipe.seed}-{number:03d}-{recipe.image_id}.png"
            saved.append(_write(day / name, png_bytes(image, recipe)))
        first = recipes[0]
        for kind, path in files.items():
            saved.append(_write(day / f"{stamp}-{first.task}-{first.seed}.{kind}", Path(path).read_bytes()))
        return saved


def _write(path: Path, data: bytes) -> Path:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".partial-", suffix=path.suffix, delete=False) as f:
        f.write(data)
    os.replace(f.name, path)
    return path


class Scratch:
    """Fresh folders for a job's files under one temporary root, removed with this object.

    Gradio copies returned files into its cache, so only the newest `keep` folders are kept: a
    long-running server does not fill its disk with old animations.
    """

    def __init__(self, keep: int = KEEP_SCRATCH):
        self.keep = keep
        self._root = tempfile.TemporaryDirectory(prefix="atelier-")

    def folder(self) -> Path:
        folder = Path(tempfile.mkdtemp(dir=self._root.name))
        older = sorted(Path(self._root.name).iterdir(), key=lambda p: p.stat().st_mtime)[: -self.keep]
        for old in older:
            shutil.rmtree(old, ignore_errors=True)
        return folder
