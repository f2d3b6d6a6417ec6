"""Variations: new takes on an image, as close as the similarity dial asks.

"image" mode is image-to-image over the same weights as Text to image. "embedding" mode conditions on the
image itself through an IP-Adapter (DALL·E 2's idea: the image's CLIP embedding as the prompt); the
adapter patches the shared U-Net in place, so it is loaded for the run and unloaded after it, always.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from diffusers import DiffusionPipeline
from PIL import Image

from .errors import AtelierError
from .registry import ModelPreset
from .requests import VariationsRequest
from .sampling import StepHook, generators, step_callback

if TYPE_CHECKING:
    from .manager import PipelineManager

# Similarity dial → denoising strength, per family: (similarity, strength) points, linear between.
# Calibrated so equal dial moves give about equal changes in distance to the input (BENCHMARKS.md).
DIAL: dict[str, tuple[tuple[float, float], ...]] = {
    # Measured (bench/dial.py): distance stays small up to strength 0.6, then the background may flip.
    "shapes": ((0.0, 0.94), (0.25, 0.86), (0.5, 0.81), (0.75, 0.76), (0.9, 0.62), (1.0, 0.15)),
    "sd15": ((0.0, 0.95), (0.25, 0.8), (0.5, 0.62), (0.75, 0.45), (1.0, 0.2)),
    "sd21": ((0.0, 0.95), (0.25, 0.8), (0.5, 0.62), (0.75, 0.45), (1.0, 0.2)),
    "sdxl": ((0.0, 0.95), (0.25, 0.82), (0.5, 0.66), (0.75, 0.5), (1.0, 0.25)),
}
ADAPTER_SCALE = (0.4, 1.0)  # embedding mode: adapter weight at similarity 0 and 1


def strength_for(similarity: float, family: str) -> float:
    points = DIAL.get(family, DIAL["sd15"])
    xs, ys = zip(*points)
    return float(np.interp(similarity, xs, ys))


def fit_to_model(image: Image.Image, preset: ModelPreset) -> Image.Image:
    """Resize so the longer side is the model's and both sides are multiples of 8."""
    side = max(preset.width, preset.height)
    scale = side / max(image.size)
    size = (max(8, round(image.width * scale / 8) * 8), max(8, round(image.height * scale / 8) * 8))
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def vary(
    pipe: DiffusionPipeline,
    request: VariationsRequest,
    preset: ModelPreset,
    seeds: list[int],
    manager: PipelineManager,
    *,
    on_step: StepHook | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[list[Image.Image], float]:
    """Variations of `request.image`, one per seed; returns them and the strength used."""
    # 1. The dial: similarity → strength for this model family.
    strength = strength_for(request.similarity, preset.family)
    image = fit_to_model(request.image, preset)
    kwargs = dict(
        prompt=[request.prompt] * len(seeds),
        negative_prompt=[request.negative_prompt] * len(seeds),
        image=image,
        strength=strength,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance_scale,
        generator=generators(seeds),
        callback_on_step_end=step_callback(on_step, should_stop),
        callback_on_step_end_tensor_inputs=["latents"],
    )
    if request.mode == "image":
        return list(pipe(**kwargs).images), strength
    # 2. Embedding mode: the adapter is attached for this run only.
    if preset.ip_adapter is None:
        raise AtelierError(f"{preset.label} has no image-prompt adapter; use the 'image' mode.")
    with manager.ip_adapter(request.model, pipe):
        low, high = ADAPTER_SCALE
        pipe.set_ip_adapter_scale(low + (high - low) * request.similarity)
        images = pipe(**kwargs, ip_adapter_image=image).images
    return list(images), strength
