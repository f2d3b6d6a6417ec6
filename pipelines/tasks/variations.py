"""Variations: new takes on an image, as close as the similarity dial asks.

"image" mode is image-to-image over the same weights as Text to image. "embedding" mode conditions on the
image itself through an IP-Adapter (DALL·E 2's idea: the image's CLIP embedding as the prompt); the
adapter is one of the per-run pipeline changes (`pipelines/device/changes.py`), attached for the run only.
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

MODES = ("image", "embedding")
# Similarity dial → denoising strength, per family: (similarity, strength) points, linear between.
# Calibrated so equal dial moves give about equal changes in distance to the input (BENCHMARKS.md).
DIAL: dict[str, tuple[tuple[float, float], ...]] = {
    # Measured (bench/dial.py): colour and shape are kept in every variation up to strength 0.5, in 83 % at
    # 0.55, 58 % at 0.62 and 25 % at 0.76, where the background starts to flip. The default 0.7 lands at 0.57.
    "shapes": ((0.0, 0.94), (0.25, 0.84), (0.5, 0.72), (0.7, 0.57), (0.9, 0.5), (1.0, 0.15)),
    "sd15": ((0.0, 0.95), (0.25, 0.8), (0.5, 0.62), (0.75, 0.45), (1.0, 0.2)),
    "sd21": ((0.0, 0.95), (0.25, 0.8), (0.5, 0.62), (0.75, 0.45), (1.0, 0.2)),
    "sdxl": ((0.0, 0.95), (0.25, 0.82), (0.5, 0.66), (0.75, 0.5), (1.0, 0.25)),
}
ADAPTER_SCALE = (0.4, 1.0)  # embedding mode: adapter weight at similarity 0 and 1


def strength_for(similarity: float, family: str) -> float:
    points = DIAL.get(family, DIAL["sd15"])
    xs, ys = zip(*points)
    return float(np.interp(similarity, xs, ys))


@dataclass(frozen=True, kw_only=True)
class VariationsRequest(BackAtSize):
    image: Image.Image | str | None = field(default=None, repr=False)  # an image, or an uploaded file's path
    similarity: float = setting(0.7, "float", "Similarity", minimum=0.0, maximum=1.0, step=0.05,
                                help="0 = a new picture · 0.7 keeps the subject · 1 = almost the same")
    mode: str = setting("image", "choice", "Mode", choices=MODES,
                        help="Image prompt needs a model with an adapter (SD 1.5, SDXL)")
    num_images: int = setting(4, "int", "Variations", minimum=1, maximum="max_images", step=1, recorded=False,
                              a1111="batch_size")
    strength: float = 0.0  # set by validation: the similarity on this model family's calibrated dial

    task = "variations"
    pipeline = "img2img"
    edits = "image"
    prompt_required = False
    modes = MODES

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        if self.mode == "embedding" and not limits.image_prompt:
            raise ValidationError("mode", "this model has no image-prompt adapter; use 'image'")
        # The model works at its own size: the image is fitted to it here, before it is queued.
        return dict(**self.fitted(limits), strength=strength_for(self.similarity, limits.family))

    def recipe_fields(self) -> dict[str, Any]:
        return {**super().recipe_fields(), "strength": self.strength}

    def ip_adapter_scale(self) -> float | None:
        if self.mode != "embedding":
            return None
        low, high = ADAPTER_SCALE
        return low + (high - low) * self.similarity


def run(
    pipe, request: VariationsRequest, seeds: list[int], *, on_step=None, should_stop: Callable[[], bool] = never,
    stages: dict | None = None,
) -> Output:
    """Variations of `request.image` (already at the model's size), one per seed.

    Args:
        pipe: an image-to-image pipeline with its scheduler (and, in embedding mode, the image-prompt
            adapter at the dial's scale) set for this request.
        request: the validated request; `strength` is the similarity on the family's dial.
        seeds: one per variation.
        stages: where the picture was sent larger than the model's size, its stage, to bring them back.
    """
    from ..device.sampling import guided  # torch: loaded where the work runs
    from ..device.upscaling import Cascade

    # 1. In embedding mode the image is also the prompt.
    extra = {"ip_adapter_image": request.image} if request.mode == "embedding" else {}
    # 2. Noise the image as far as the dial says, then denoise it towards the (optional) prompt.
    cascade = Cascade(stages, request, len(seeds), request.image.size, on_step, should_stop)
    output = pipe(image=request.image, **guided(request, seeds, cascade.hook, should_stop, strength=request.strength), **extra)
    # 3. Back at the size sent, where it was larger.
    return Output(cascade.finish(output.images, seeds), seeds, [cascade.recorded] * len(seeds))


TASK = Task(VariationsRequest, run)
