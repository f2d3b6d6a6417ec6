"""Requests: the typed contract between the UI (or the HTTP API) and the back end.

Every value arrives from a browser or a script and is checked here, on the server, before anything is
queued: a bad value is answered with a `ValidationError` that names the field. `validated()` returns a
normalised copy (integers as int, text cleaned); the original is never trusted.
"""

from __future__ import annotations

import dataclasses
import math
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

MAX_PROMPT_CHARS = 2000  # far beyond any text encoder's window; longer is a paste error, not a prompt
MAX_SEED = 2**32 - 1
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
MAX_FRAMES = 48
SCHEDULERS = ("Euler a", "Euler", "DPM++ 2M Karras", "DDIM", "UniPC", "LCM")
FILL_MODES = ("original", "fill", "noise")
VARIATION_MODES = ("image", "embedding")


class ValidationError(ValueError):
    """A request value the server refuses; `field` names it for the person who sent it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Limits:
    """What one model on this server accepts; sizes come from the model, counts from the settings."""

    min_size: int = 64
    max_size: int = 1024
    max_pixels: int = 1024 * 1024
    max_images: int = 8
    schedulers: tuple[str, ...] = SCHEDULERS
    models: tuple[str, ...] = ()


def clean_text(name: str, value: Any, *, required: bool = False) -> str:
    """Text as typed, minus what cannot be shown or encoded: NUL and other controls, lone surrogates."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(name, f"expected text, got {type(value).__name__}")
    if len(value) > MAX_PROMPT_CHARS:
        raise ValidationError(name, f"{len(value)} characters; at most {MAX_PROMPT_CHARS} are accepted")
    value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    value = "".join(c for c in value if c in "\n\t" or unicodedata.category(c) != "Cc").strip()
    if required and not value:
        raise ValidationError(name, "must not be empty")
    return value


def as_int(name: str, value: Any, low: int, high: int) -> int:
    """An integer in [low, high]; an integral float (20.0) is accepted, 20.5 is not."""
    if isinstance(value, bool) or value is None:
        raise ValidationError(name, f"expected a whole number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValidationError(name, f"expected a whole number, got {value!r}") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(name, f"expected a whole number, got {value}")
        if not value.is_integer():
            raise ValidationError(name, f"expected a whole number, got {value}")
        value = int(value)
    if not isinstance(value, int):
        raise ValidationError(name, f"expected a whole number, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValidationError(name, f"{value} is out of range {low}–{high}")
    return value


def as_float(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or value is None:
        raise ValidationError(name, f"expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(name, f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValidationError(name, f"expected a finite number, got {number}")
    if not low <= number <= high:
        raise ValidationError(name, f"{number:g} is out of range {low:g}–{high:g}")
    return number


def as_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        shown = ", ".join(choices) if len(choices) <= 12 else ", ".join(choices[:12]) + ", …"
        raise ValidationError(name, f"{str(value)[:80]!r} is not one of: {shown}")
    return value


def as_seed(name: str, value: Any) -> int:
    """0…2³²−1, or −1 for a random seed (drawn when the job runs and reported in the recipe)."""
    return as_int(name, value, -1, MAX_SEED)


def as_image(name: str, value: Any, limits: Limits) -> Image.Image:
    if not isinstance(value, Image.Image):
        raise ValidationError(name, "an image is required")
    if value.width * value.height > limits.max_pixels:
        raise ValidationError(
            name, f"{value.width}×{value.height} is larger than this server accepts ({limits.max_pixels} pixels)"
        )
    return value


def as_size(name: str, value: Any, limits: Limits) -> int:
    size = as_int(name, value, limits.min_size, limits.max_size)
    if size % 8:
        raise ValidationError(name, f"{size} is not a multiple of 8")
    return size


@dataclass(frozen=True, kw_only=True)
class Request:
    """What every task shares: the model, the text, the seed and the sampler."""

    model: str
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = -1
    steps: int = 20
    guidance_scale: float = 5.0
    scheduler: str = "Euler a"
    num_images: int = 1
    parent: str | None = None  # image id this request starts from, for the recipe's lineage

    task = "base"
    prompt_required = True

    def validated(self, limits: Limits) -> Request:
        checked = dict(
            model=as_choice("model", self.model, limits.models),
            prompt=clean_text("prompt", self.prompt, required=self.prompt_required),
            negative_prompt=clean_text("negative_prompt", self.negative_prompt),
            seed=as_seed("seed", self.seed),
            steps=as_int("steps", self.steps, 1, MAX_STEPS),
            guidance_scale=as_float("guidance_scale", self.guidance_scale, 0.0, MAX_GUIDANCE),
            scheduler=as_choice("scheduler", self.scheduler, limits.schedulers),
            num_images=as_int("num_images", self.num_images, 1, limits.max_images),
            parent=None if self.parent is None else clean_text("parent", self.parent)[:64],
        )
        return dataclasses.replace(self, **{**checked, **self._validated_own(limits)})

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        """Fields of the subclass, checked; returned as replacements."""
        return {}


@dataclass(frozen=True, kw_only=True)
class Txt2ImgRequest(Request):
    width: int = 512
    height: int = 512
    guidance_rescale: float = 0.0

    task = "txt2img"

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        width, height = as_size("width", self.width, limits), as_size("height", self.height, limits)
        if width * height > limits.max_pixels:
            raise ValidationError("width", f"{width}×{height} is more than {limits.max_pixels} pixels")
        return dict(
            width=width, height=height, guidance_rescale=as_float("guidance_rescale", self.guidance_rescale, 0.0, 1.0)
        )


@dataclass(frozen=True, kw_only=True)
class VariationsRequest(Request):
    image: Image.Image | None = field(default=None, repr=False)
    similarity: float = 0.7  # 1 = very close, 0 = loose
    mode: str = "image"  # "image": image-to-image; "embedding": image-prompt adapter

    task = "variations"
    prompt_required = False

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        return dict(
            image=as_image("image", self.image, limits),
            similarity=as_float("similarity", self.similarity, 0.0, 1.0),
            mode=as_choice("mode", self.mode, VARIATION_MODES),
        )


@dataclass(frozen=True, kw_only=True)
class MorphRequest(Request):
    prompt_b: str = ""
    seed_b: int = -1  # −1: the same noise for every frame; otherwise travel from seed to seed_b
    num_frames: int = 8
    even_pacing: bool = True
    width: int = 512
    height: int = 512
    image_a: Image.Image | None = field(default=None, repr=False)
    image_b: Image.Image | None = field(default=None, repr=False)
    depth: float = 0.6  # image morph: how far each image is noised before the blend (0–1)
    fps: int = 8
    pingpong: bool = False  # the animation plays forward, then back

    task = "morph"
    prompt_required = False

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        images = (self.image_a, self.image_b)
        if (images[0] is None) != (images[1] is None):
            raise ValidationError("image_b" if images[1] is None else "image_a", "give both images or neither")
        with_images = images[0] is not None
        prompt_b = clean_text("prompt_b", self.prompt_b, required=not with_images)
        if not with_images and not self.prompt.strip():
            raise ValidationError("prompt", "must not be empty")
        width, height = as_size("width", self.width, limits), as_size("height", self.height, limits)
        return dict(
            prompt_b=prompt_b,
            seed_b=as_seed("seed_b", self.seed_b),
            num_frames=as_int("num_frames", self.num_frames, 2, MAX_FRAMES),
            even_pacing=bool(self.even_pacing),
            width=width,
            height=height,
            image_a=as_image("image_a", self.image_a, limits) if with_images else None,
            image_b=as_image("image_b", self.image_b, limits) if with_images else None,
            depth=as_float("depth", self.depth, 0.05, 1.0),
            fps=as_int("fps", self.fps, 1, 30),
            pingpong=bool(self.pingpong),
            num_images=1,
        )


@dataclass(frozen=True, kw_only=True)
class InpaintRequest(Request):
    image: Image.Image | None = field(default=None, repr=False)
    mask: Image.Image | None = field(default=None, repr=False)  # white = repaint
    strength: float = 0.85
    mask_blur: int = 4  # feather, pixels
    grow: int = 0  # dilate (>0) or erode (<0) the mask, pixels
    only_masked: bool = True  # work on the mask's box at the model's size, then paste back
    padding: int = 16  # context around the mask's box, pixels
    fill: str = "original"  # what the masked area starts from
    color_correction: bool = True

    task = "inpaint"

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        image = as_image("image", self.image, limits)
        if not isinstance(self.mask, Image.Image):
            raise ValidationError("mask", "paint over the area to repaint (the mask is empty)")
        return dict(
            image=image,
            mask=self.mask,
            strength=as_float("strength", self.strength, 0.01, 1.0),
            mask_blur=as_int("mask_blur", self.mask_blur, 0, 64),
            grow=as_int("grow", self.grow, -64, 64),
            only_masked=bool(self.only_masked),
            padding=as_int("padding", self.padding, 0, 256),
            fill=as_choice("fill", self.fill, FILL_MODES),
            color_correction=bool(self.color_correction),
        )


@dataclass(frozen=True, kw_only=True)
class OutpaintRequest(InpaintRequest):
    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0

    task = "outpaint"

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        image = as_image("image", self.image, limits)
        sides = {k: as_int(k, getattr(self, k), 0, 1024) for k in ("left", "right", "top", "bottom")}
        if not any(sides.values()):
            raise ValidationError("left", "extend at least one side by some pixels")
        width = image.width + sides["left"] + sides["right"]
        height = image.height + sides["top"] + sides["bottom"]
        if width * height > limits.max_pixels:
            raise ValidationError("left", f"the extended canvas {width}×{height} is more than {limits.max_pixels} pixels")
        return dict(
            image=image,
            mask=None,
            strength=as_float("strength", self.strength, 0.01, 1.0),
            mask_blur=as_int("mask_blur", self.mask_blur, 0, 64),
            grow=0,
            only_masked=bool(self.only_masked),
            padding=as_int("padding", self.padding, 0, 256),
            fill=as_choice("fill", self.fill, FILL_MODES),
            color_correction=bool(self.color_correction),
            **sides,
        )
