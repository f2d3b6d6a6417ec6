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

    def save(self, image: Image.Image, recipe: Recipe, index: int | None = None) -> Path:
        """Save under `<date>/<time>-<task>-<seed>[-<index>]-<image id>.png`; `index` is the image's place in
        a run whose images share a seed (a morph's frames), so their names sort in order."""
        return self.write(png_bytes(image, recipe), recipe, index)

    def write(self, data: bytes, recipe: Recipe, index: int | None = None) -> Path:
        """Write a PNG already encoded (recipe inside, signed) under the name `save` would give it."""
        day = self.folder / time.strftime("%Y-%m-%d")
        name = f"{time.strftime('%H%M%S')}-{file_stem(recipe, index)}.png"
        write_whole(day / name, data)
        return day / name


def write_whole(path: Path, data: bytes) -> None:
    """Write through a temporary name in the same folder, so a reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".partial-", delete=False) as f:
        f.write(data)
    os.replace(f.name, path)


def file_stem(recipe: Recipe, index: int | None = None) -> str:
    """A result's file name after its time: task, seed, place in its run (if any) and image id."""
    place = "" if index is None else f"-{index:03d}"
    return f"{recipe.task}-{recipe.seed}{place}-{recipe.image_id}"


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
