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
import os
import secrets
from dataclasses import MISSING, dataclass
from typing import Any, ClassVar

from PIL import Image

from .errors import ValidationError
from .fields import MAX_PROMPT_CHARS, MAX_SEED, clean_text, setting, settings_of
from .images import load_image
from .loras import Loras, as_loras, checked, split_tags
from .schedulers import NAMES as SCHEDULER_NAMES
from .styles import StyleText, as_style_names, expand

__all__ = ["MAX_PROMPT_CHARS", "Limits", "Request", "as_image", "fit_side", "seeds_from"]

MAX_STYLED_CHARS = 4 * MAX_PROMPT_CHARS  # the text with its styles: the limit on the typed text is MAX_PROMPT_CHARS
MAX_STEPS = 150
MAX_GUIDANCE = 30.0


@dataclass(frozen=True)
class Limits:
    """What one model on this server accepts: sizes and samplers come from the model, counts from the
    server's settings."""

    min_size: int = 64
    max_size: int = 1024
    native_size: int = 512  # the longer side the model was made for; image inputs are fitted to it
    cascade_scale: int = 1  # the scale of the model's own stage where its pictures go on through it by default
    family: str = "sd15"  # decides family-calibrated dials (Variations' similarity)
    image_prompt: bool = False  # the model has an image-prompt adapter (IP-Adapter)
    max_pixels: int = 1024 * 1024
    max_images: int = 8
    schedulers: tuple[str, ...] = SCHEDULER_NAMES
    models: tuple[str, ...] = ()
    loras: tuple[tuple[str, str], ...] = ()  # every LoRA name on the server, with why it cannot serve this model ("" if it can)
    styles: tuple[StyleText, ...] = ()  # the styles offered with this model: names and their prompt templates


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
    """What every task shares: the model, the text, the seed and the sampler. Each setting is declared
    once (`pipelines.front.fields.setting`): its checks, its recipe entry and the page's control come from there."""

    model: str = setting(MISSING, "choice", "Model", choices="models", recorded=False, a1111="sd_model_checkpoint")
    prompt: str = setting("", "prompt", "Prompt", recorded=False, a1111="prompt")
    negative_prompt: str = setting("", "prompt", "Negative prompt", recorded=False, a1111="negative_prompt")
    seed: int = setting(-1, "seed", "Seed (−1 = random)", minimum=-1, maximum=MAX_SEED, recorded=False, a1111="seed")
    steps: int = setting(20, "int", "Steps", minimum=1, maximum=MAX_STEPS, step=1, recorded=False, a1111="steps",
                         preset="steps")
    guidance_scale: float = setting(5.0, "float", "Guidance (how closely to follow the prompt)", minimum=0.0,
                                    maximum=MAX_GUIDANCE, step=0.5, recorded=False, a1111="cfg_scale", preset="guidance")
    scheduler: str = setting("Euler a", "choice", "Scheduler", choices="schedulers", recorded=False,
                             a1111="sampler_name", preset="scheduler")
    num_images: int = setting(1, "int", "Images", minimum=1, maximum="max_images", step=1, recorded=False,
                              a1111="batch_size")
    parent: str | None = None  # image id this request starts from, for the recipe's lineage
    loras: Loras = ()  # (LoRA name, weight −2…2) pairs; `<lora:name:weight>` in a prompt adds to them
    styles: tuple[str, ...] = ()  # style names whose templates wrap the prompt and negative prompt, in order

    task: ClassVar[str] = "base"  # the task's registered name: its HTTP endpoint and its recipes' task
    pipeline: ClassVar[str] = "txt2img"  # the view it runs on: txt2img, img2img or inpaint
    edits: ClassVar[str] = ""  # the field of the picture it changes ('' when it makes a new one): its credentials say "edited"
    prompt_required: ClassVar[bool] = True

    def validated(self, limits: Limits) -> Request:
        """A checked, normalised copy: the model, the text (styles wrap it, LoRA tags leave it), every other
        declared setting by its declaration, then the task's own rules across fields and its uploads."""
        declared = settings_of(self)
        declared["model"].checked(self.model, limits)
        styles = as_style_names("styles", self.styles, limits.styles)
        prompt, negative = expand(
            clean_text("prompt", self.prompt), clean_text("negative_prompt", self.negative_prompt), styles, limits.styles
        )
        prompt, tagged = split_tags(prompt)
        negative, tagged_negative = split_tags(negative)
        text = dict(
            prompt=clean_text("prompt", prompt, required=self.prompt_required, limit=MAX_STYLED_CHARS),
            negative_prompt=clean_text("negative_prompt", negative, limit=MAX_STYLED_CHARS),
            loras=checked("loras", as_loras("loras", self.loras) + tagged + tagged_negative, dict(limits.loras)),
            styles=styles,
        )
        values = {name: s.checked(getattr(self, name), limits) for name, s in declared.items() if s.kind != "prompt"}
        parent = None if self.parent in (None, "") else clean_text("parent", self.parent)[:64]
        shared = dataclasses.replace(self, **text, **values, parent=parent)
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
        """The task's own settings, recorded in every recipe it makes: those declared `recorded`."""
        return {name: getattr(self, name) for name, s in settings_of(self).items() if s.recorded}

    @classmethod
    def left_out_when_off(cls) -> dict[str, Any]:
        """Settings `recipe_fields` leaves out while they are off, with their off values: a recipe without
        them was made with them off, and restoring it turns them off."""
        return {}

    def texts(self) -> tuple[str, ...]:
        """Every text the run encodes: weighted and long prompts are read alike in all of them."""
        return (self.prompt, self.negative_prompt)

    def ip_adapter_scale(self) -> float | None:
        """How strongly the image prompt conditions this run, or None when it uses no image prompt."""
        return None

    def stages(self) -> tuple[str, ...]:
        """The model's other pipelines the work needs besides `pipeline` (a cascade's upscaler), by kind."""
        return ()
