"""Recipes: everything needed to make an image again, written into its PNG and read back.

Two text chunks: `parameters` in the AUTOMATIC1111 layout that other tools already read, and `atelier`,
the full recipe as JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from PIL import Image, PngImagePlugin

from .loras import as_tags

RECIPE_KEY = "atelier"
_VERSIONED = ("torch", "diffusers", "transformers", "gradio")
# Facts about an image, not settings to restore. Styles are already in the prompt it records: picking them
# again would apply them twice, and a style edited since would change the picture.
_NOT_SETTINGS = ("task", "settings", "parent", "image_id", "notices", "versions", "styles")


def library_versions() -> dict[str, str]:
    out = {}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def image_id(image: Image.Image) -> str:
    """A short content hash of the pixels: the id recipes use to link a result to its parent."""
    return hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """What every image records: the settings all tasks share, and the task's own in `settings`."""

    task: str
    model: str
    prompt: str
    negative_prompt: str = ""
    seed: int
    steps: int
    guidance_scale: float
    scheduler: str
    width: int
    height: int
    settings: dict[str, Any] = field(default_factory=dict)  # the task's own: strength, similarity, seam…
    parent: str | None = None
    loras: list[list] = field(default_factory=list)  # [name, weight] pairs applied for this image
    styles: list[str] = field(default_factory=list)  # the styles that wrapped `prompt` (already expanded in it)
    image_id: str = ""
    notices: tuple[str, ...] = ()
    versions: dict[str, str] = field(default_factory=library_versions)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["notices"] = list(self.notices)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """A recipe from its JSON; recipes of earlier versions kept task settings as top-level fields
        (and in `extra`): they are read into `settings`."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        legacy = {k: v for k, v in data.items() if k not in names and k != "extra" and v is not None}
        known["settings"] = {**dict(data.get("extra") or {}), **legacy, **dict(data.get("settings") or {})}
        known["notices"] = tuple(known.get("notices", ()))
        return cls(**known)

    def values(self) -> dict[str, Any]:
        """Every setting by the name a request gives it: what restoring the settings fills in."""
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _NOT_SETTINGS}
        return {**self.settings, **shared}

    def a1111_parameters(self) -> str:
        """The `parameters` text AUTOMATIC1111 writes, so other tools show the settings too."""
        lines = [" ".join(part for part in (self.prompt, as_tags(tuple(map(tuple, self.loras)))) if part)]
        if self.negative_prompt:
            lines.append(f"Negative prompt: {self.negative_prompt}")
        settings = [
            f"Steps: {self.steps}",
            f"Sampler: {self.scheduler}",
            f"CFG scale: {self.guidance_scale:g}",
            f"Seed: {self.seed}",
            f"Size: {self.width}x{self.height}",
            f"Model: {self.model}",
        ]
        if self.settings.get("strength") is not None:
            settings.append(f"Denoising strength: {self.settings['strength']:g}")
        lines.append(", ".join(settings))
        return "\n".join(lines)

    def png_info(self) -> PngImagePlugin.PngInfo:
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", self.a1111_parameters())
        info.add_itxt(RECIPE_KEY, json.dumps(self.to_dict(), ensure_ascii=False))
        return info


def attach(image: Image.Image, recipe: Recipe) -> Image.Image:
    """Put the recipe in `image.info`, where PNG encoders (Gradio's included) write text chunks from."""
    image.info["parameters"] = recipe.a1111_parameters()
    image.info[RECIPE_KEY] = json.dumps(recipe.to_dict(), ensure_ascii=False)
    return image


def png_bytes(image: Image.Image, recipe: Recipe) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=recipe.png_info())
    return buffer.getvalue()


def read_recipe(source: Image.Image | str | bytes) -> Recipe | None:
    """The recipe in a PNG (path, bytes or opened image), or None when it carries none."""
    if isinstance(source, bytes):
        source = Image.open(io.BytesIO(source))
    elif isinstance(source, str):
        source = Image.open(source)
    text = source.info.get(RECIPE_KEY)
    if not text:
        return None
    try:
        return Recipe.from_dict(json.loads(text))
    except (ValueError, TypeError):
        return None
