"""Sketch: rough coloured strokes become the layout of the picture the prompt describes.

The drawing (strokes on a blank canvas, or over a picture) is noised part of the way and denoised
towards the prompt, image to image: what the strokes decide — where things are, their colours, their
rough sizes — stays, and the model draws the rest. "How freely" is that strength: 0 would keep the
drawing as it is, 1 ignores it. Measured on the embedded model (a blue blob at the top left, "a blue
triangle on a white background", 12 seeds): from 0.3 to 0.75 every result is a blue triangle at the top
left; at 0.8 the place starts to drift (8 of 12), at 0.9 it is gone (4 of 12). The default, 0.6, sits
in the middle of that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..front.errors import ValidationError
from ..front.fields import setting
from ..front.requests import Limits
from ..front.runner import Output, Task, never
from .cascade import BackAtSize

INK = 24  # how far (0–255, any channel) a pixel must be from the paper's colour to count as drawn


def drawn_share(drawing: Image.Image) -> float:
    """The share of the drawing's pixels that differ from its most common colour (the paper)."""
    pixels = np.asarray(drawing.convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    paper = colours[counts.argmax()].astype(int)
    return float((np.abs(pixels.astype(int) - paper).max(axis=1) > INK).mean())


@dataclass(frozen=True, kw_only=True)
class SketchRequest(BackAtSize):
    sketch: Image.Image | str | None = field(default=None, repr=False)  # the drawing, or an uploaded file's path
    strength: float = setting(0.6, "float", "How freely", minimum=0.05, maximum=1.0, step=0.05,
                              help="0 = keep the drawing · 1 = ignore it", a1111="denoising_strength")
    num_images: int = setting(2, "int", "Images", minimum=1, maximum="max_images", step=1, recorded=False,
                              a1111="batch_size")

    task = "sketch"
    pipeline = "img2img"
    picture = "sketch"

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        empty = ValidationError("sketch", "the drawing is empty: draw the picture's shapes in their colours first")
        if self.sketch in (None, ""):  # a canvas nobody drew on sends no picture at all
            raise empty
        # The model works at its own size: the drawing is fitted to it here, before it is queued.
        checked = self.fitted(limits)
        if drawn_share(checked["sketch"]) < 0.002:
            raise empty
        return checked


def run(
    pipe, request: SketchRequest, seeds: list[int], *, on_step=None, should_stop: Callable[[], bool] = never,
    stages: dict | None = None,
) -> Output:
    """One picture per seed with the drawing's layout.

    Args:
        pipe: an image-to-image pipeline, its scheduler set for this request.
        request: the validated request; the drawing is already at the model's size.
        seeds: one per picture.
        stages: where the drawing was larger than the model's size, its stage, to bring them back.
    """
    from ..device.sampling import guided  # torch: loaded where the work runs
    from ..device.upscaling import Cascade

    # 1. Noise the drawing as far as "how freely" says, then denoise it towards the prompt (a schedule too
    #    short for one step at that strength is lengthened, as in every image task).
    cascade = Cascade(stages, request, len(seeds), request.sketch.size, on_step, should_stop)
    output = pipe(image=request.sketch, **guided(request, seeds, cascade.hook, should_stop, strength=request.strength))
    # 2. Back at the drawing's size, where it was larger.
    return Output(cascade.finish(output.images, seeds), seeds, [cascade.recorded] * len(seeds))


TASK = Task(SketchRequest, run)
