"""Inpainting: repaint the masked region; every pixel outside the feathered mask stays byte-identical.

Works with a dedicated 9-channel inpainting U-Net or, through `from_pipe`, with the base model's own
4-channel U-Net (latents outside the mask are blended back at every step). Either way the final image is
composited in pixel space, which is what makes the guarantee exact, and the seam is measured and
corrected when it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from diffusers import DiffusionPipeline
from PIL import Image

from .masks import bounding_box, checked_mask, composite, feather, fill_masked, mask_hash, match_colour, seam_score
from .requests import InpaintRequest, OutpaintRequest
from .sampling import StepHook, generators, step_callback

SEAM_THRESHOLD = 6.0  # Lab units; above this the border is visible and colour correction runs


@dataclass(frozen=True)
class Inpainted:
    images: list[Image.Image]
    seams: list[float]
    mask_hash: str
    settings: dict = field(default_factory=dict)


def native_size(pipe: DiffusionPipeline) -> int:
    """The side the model was trained at, in pixels."""
    return pipe.unet.config.sample_size * pipe.vae_scale_factor


def work_size(width: int, height: int, side: int) -> tuple[int, int]:
    """Scale (width, height) so the longer side is the model's, both multiples of 8."""
    scale = side / max(width, height)
    return max(8, round(width * scale / 8) * 8), max(8, round(height * scale / 8) * 8)


def square_box(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Grow a box towards a square (models work best near their training aspect), within the image."""
    left, top, right, bottom = box
    width, height = size
    side = min(max(right - left, bottom - top), width, height)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    left = int(min(max(cx - side / 2, 0), width - side))
    top = int(min(max(cy - side / 2, 0), height - side))
    return left, top, left + side, top + side


def inpaint(
    pipe: DiffusionPipeline,
    request: InpaintRequest | OutpaintRequest,
    seeds: list[int],
    *,
    protect: np.ndarray | None = None,
    on_step: StepHook | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Inpainted:
    """Repaint the masked area of `request.image`, one result per seed.

    Args:
        pipe: an inpainting pipeline with its scheduler set for this request.
        request: image, mask (white = repaint), prompt, strength, feather, crop and fill settings.
        seeds: one per result.
        protect: optional boolean array of pixels that must never change (outpainting's original).
    """
    original = np.asarray(request.image.convert("RGB"))
    height, width = original.shape[:2]

    # 1. The mask: binary at the image's size, grown or shrunk, then feathered for the final blend.
    binary = checked_mask(request.mask, (width, height), request.grow)
    soft = feather(binary, request.mask_blur)
    if protect is not None:
        soft[protect] = 0

    # 2. Where to work: the mask's box with context (at the model's size), or the whole image.
    box = square_box(bounding_box(binary, request.padding), (width, height)) if request.only_masked else (0, 0, width, height)
    left, top, right, bottom = box
    size = work_size(right - left, bottom - top, native_size(pipe))

    # 3. What the masked area starts from, then the crop the model sees.
    start = fill_masked(original, binary, request.fill, np.random.default_rng(seeds[0]))
    crop = Image.fromarray(start[top:bottom, left:right]).resize(size, Image.Resampling.LANCZOS)
    crop_mask = Image.fromarray(binary[top:bottom, left:right]).resize(size, Image.Resampling.NEAREST)

    # 4. Sample.
    output = pipe(
        prompt=[request.prompt] * len(seeds),
        negative_prompt=[request.negative_prompt] * len(seeds),
        image=crop,
        mask_image=crop_mask,
        width=size[0],
        height=size[1],
        strength=request.strength,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance_scale,
        generator=generators(seeds),
        callback_on_step_end=step_callback(on_step, should_stop),
        callback_on_step_end_tensor_inputs=["latents"],
    )

    # 5. Paste back and composite in pixel space; correct the colour where the seam shows.
    images, seams = [], []
    for generated in output.images:
        canvas = original.copy()
        canvas[top:bottom, left:right] = np.asarray(generated.convert("RGB").resize((right - left, bottom - top), Image.Resampling.LANCZOS))
        result = composite(original, canvas, soft)
        seam = seam_score(result, binary)
        if request.color_correction and seam > SEAM_THRESHOLD:
            corrected = composite(original, match_colour(canvas, original, binary), soft)
            corrected_seam = seam_score(corrected, binary)
            if corrected_seam < seam:
                result, seam = corrected, corrected_seam
        images.append(Image.fromarray(result))
        seams.append(round(seam, 2))
    settings = dict(
        box=list(box), work_size=list(size), mask_blur=request.mask_blur, grow=request.grow, fill=request.fill, only_masked=request.only_masked
    )
    return Inpainted(images, seams, mask_hash(binary), settings)
