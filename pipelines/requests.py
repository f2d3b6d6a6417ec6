"""Requests: the typed contract between the UI (or the HTTP API) and the back end.

Every value arrives from a browser or a script and is checked here, on the server, before anything is
queued: a bad value is answered with a `ValidationError` that names the field. `validated()` returns a
normalised copy (integers as int, text cleaned, uploads opened); the original is never trusted.

`Request` holds what every task shares. Each task's own request type lives in its module under
`pipelines/tasks/` and declares what the rest of the studio needs to know about it: the pipeline it
runs on, the size and number of the images it makes, and the settings its recipes record.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any, ClassVar

from PIL import Image

from .errors import ValidationError
from .images import load_image
from .loras import Loras, as_loras, checked, split_tags
from .styles import StyleText, as_style_names, expand
from .schedulers import NAMES as SCHEDULER_NAMES

MAX_PROMPT_CHARS = 2000  # far beyond any text encoder's window; longer is a paste error, not a prompt
MAX_STYLED_CHARS = 4 * MAX_PROMPT_CHARS  # the text with its styles: the limit above is the typed text's alone
MAX_SEED = 2**32 - 1
MAX_STEPS = 150
MAX_GUIDANCE = 30.0


@dataclass(frozen=True)
class Limits:
    """What one model on this server accepts: sizes and samplers come from the model, counts from the
    server's settings."""

    min_size: int = 64
    max_size: int = 1024
    native_size: int = 512  # the longer side the model was made for; image inputs are fitted to it
    family: str = "sd15"  # decides family-calibrated dials (Variations' similarity)
    image_prompt: bool = False  # the model has an image-prompt adapter (IP-Adapter)
    max_pixels: int = 1024 * 1024
    max_images: int = 8
    schedulers: tuple[str, ...] = SCHEDULER_NAMES
    models: tuple[str, ...] = ()
    loras: tuple[tuple[str, str], ...] = ()  # every LoRA name on the server, with why it cannot serve this model ("" if it can)
    styles: tuple[StyleText, ...] = ()  # the styles offered with this model: names and their prompt templates


def clean_text(name: str, value: Any, *, required: bool = False, limit: int = MAX_PROMPT_CHARS) -> str:
    """Text as typed, minus what cannot be shown or encoded: NUL and other controls, lone surrogates."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(name, f"expected text, got {type(value).__name__}")
    if len(value) > limit:
        raise ValidationError(name, f"{len(value)} characters; at most {limit} are accepted")
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
    """0…2³²−1, or −1 for a random seed (drawn when the request is submitted and kept in the recipe)."""
    return as_int(name, value, -1, MAX_SEED)


def as_image(name: str, value: Any, limits: Limits) -> Image.Image:
    """An image within the pixel limit. A path is an upload: it is opened here (header checked before
    decoding, any mode made RGB, scaled into the limit) with a clear refusal if it is not a picture."""
    if isinstance(value, (str, os.PathLike)) or value is None:
        return load_image(value, limits.max_pixels, name)
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


def fit_side(image: Image.Image, side: int) -> Image.Image:
    """RGB, scaled so the longer side is `side` and both sides are multiples of 8 (what a model takes)."""
    scale = side / max(image.size)
    size = (max(8, round(image.width * scale / 8) * 8), max(8, round(image.height * scale / 8) * 8))
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def seeds_from(seed: int, count: int) -> list[int]:
    """Image i of a batch uses seed + i (wrapping), so each can be made again alone; −1 draws the seed."""
    first = secrets.randbelow(MAX_SEED + 1) if seed == -1 else seed
    return [(first + i) % (MAX_SEED + 1) for i in range(count)]


@dataclass(frozen=True, kw_only=True)
class Request:
    """What every task shares: the model, the text, the seed and the sampler."""

    model: str  # a preset name, never a path
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = -1  # −1: random
    steps: int = 20
    guidance_scale: float = 5.0
    scheduler: str = "Euler a"  # a name from pipelines.schedulers
    num_images: int = 1
    parent: str | None = None  # image id this request starts from, for the recipe's lineage
    loras: Loras = ()  # (LoRA name, weight −2…2) pairs; `<lora:name:weight>` in a prompt adds to them
    styles: tuple[str, ...] = ()  # style names whose templates wrap the prompt and negative prompt, in order

    task: ClassVar[str] = "base"  # the task's registered name: its HTTP endpoint and its recipes' task
    pipeline: ClassVar[str] = "txt2img"  # the view it runs on: txt2img, img2img or inpaint
    prompt_required: ClassVar[bool] = True

    def validated(self, limits: Limits) -> Request:
        model = as_choice("model", self.model, limits.models)
        # Styles wrap the text as typed; LoRA tags (from the text or a style) then leave it for `loras`.
        styles = as_style_names("styles", self.styles, limits.styles)
        prompt, negative = expand(
            clean_text("prompt", self.prompt), clean_text("negative_prompt", self.negative_prompt), styles, limits.styles
        )
        prompt, tagged = split_tags(prompt)
        negative, tagged_negative = split_tags(negative)
        shared = dataclasses.replace(
            self,
            model=model,
            prompt=clean_text("prompt", prompt, required=self.prompt_required, limit=MAX_STYLED_CHARS),
            negative_prompt=clean_text("negative_prompt", negative, limit=MAX_STYLED_CHARS),
            loras=checked("loras", as_loras("loras", self.loras) + tagged + tagged_negative, dict(limits.loras)),
            styles=styles,
            seed=as_seed("seed", self.seed),
            steps=as_int("steps", self.steps, 1, MAX_STEPS),
            guidance_scale=as_float("guidance_scale", self.guidance_scale, 0.0, MAX_GUIDANCE),
            scheduler=as_choice("scheduler", self.scheduler, limits.schedulers),
            num_images=as_int("num_images", self.num_images, 1, limits.max_images),
            parent=None if self.parent in (None, "") else clean_text("parent", self.parent)[:64],
        )
        return dataclasses.replace(shared, **shared._validated_own(limits))

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        """Fields of the subclass, checked (the shared ones already are); returned as replacements."""
        return {}

    # -- what the rest of the studio asks of a request --------------------------------------------------

    def output_size(self) -> tuple[int, int]:
        """(width, height) of the images it makes: decides tiled decoding and the accelerator time asked for."""
        raise NotImplementedError

    def images_made(self) -> int:
        """How many images it makes (a morph's frames, a batch's images)."""
        return self.num_images

    def draw_seeds(self) -> list[int]:
        """One seed per sampling run: seed, seed + 1, … (a random first seed is drawn now)."""
        return seeds_from(self.seed, self.num_images)

    def recipe_fields(self) -> dict[str, Any]:
        """The task's own settings, recorded in every recipe it makes."""
        return {}

    def texts(self) -> tuple[str, ...]:
        """Every text the run encodes: weighted and long prompts are read alike in all of them."""
        return (self.prompt, self.negative_prompt)

    def ip_adapter_scale(self) -> float | None:
        """How strongly the image prompt conditions this run, or None when it uses no image prompt."""
        return None
