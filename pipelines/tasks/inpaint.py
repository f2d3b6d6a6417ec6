"""Inpainting: repaint the masked region; every pixel outside the feathered mask stays byte-identical.

Works with a dedicated 9-channel inpainting U-Net or, through `from_pipe`, with the base model's own
4-channel U-Net (latents outside the mask are blended back at every step). Either way the final image is
composited in pixel space, which is what makes the guarantee exact, and the seam is measured and
corrected when it shows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from ..front.errors import ValidationError
from ..front.fields import setting
from ..front.images import open_upload
from ..front.requests import Limits, as_image
from ..front.runner import Output, Task, never
from .cascade import BackAtSize, back_scale
from .masks import (
    blend_edge,
    bounding_box,
    checked_mask,
    composite,
    feather,
    fill_masked,
    mask_hash,
    match_colour,
    seam_score,
)

FILL_MODES = ("original", "fill", "noise")
SEAM_THRESHOLD = 6.0  # Lab units; above this the border is visible and the edge is corrected


@dataclass(frozen=True, kw_only=True)
class PaintSettings(BackAtSize):
    """How a repaint is done: what Inpaint and Outpaint share. The picture keeps its size; `upscale` is the
    most the repainted area is enlarged through the model's stage on its way back (the area decides)."""

    image: Image.Image | str | None = field(default=None, repr=False)  # an image, or an uploaded file's path
    strength: float = setting(0.85, "float", "Strength (how much the area changes)", minimum=0.05, maximum=1.0,
                              step=0.05, a1111="denoising_strength")
    num_images: int = setting(2, "int", "Images", minimum=1, maximum="max_images", step=1, recorded=False,
                              a1111="batch_size")
    mask_blur: int = setting(4, "int", "Feather (px)", minimum=0, maximum=64, step=1, a1111="mask_blur")
    # Work on the mask's box at the model's size, then paste back.
    only_masked: bool = setting(True, "bool", "Inpaint only the masked area (at full model resolution)",
                                a1111="inpaint_full_res")
    padding: int = setting(16, "int", "Context around it (px)", minimum=0, maximum=256, step=4,
                           a1111="inpaint_full_res_padding")
    fill: str = setting("original", "choice", "Masked area starts from", choices=FILL_MODES)
    color_correction: bool = setting(True, "bool", "Match colours at the border when the seam shows")

    pipeline = "inpaint"
    edits = "image"

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        return dict(image=as_image("image", self.image, limits), upscale=limits.cascade_scale)

    def output_size(self) -> tuple[int, int]:
        return self.image.size


@dataclass(frozen=True, kw_only=True)
class InpaintRequest(PaintSettings):
    mask: Image.Image | str | None = field(default=None, repr=False)  # white = repaint; or an uploaded file's path
    grow: int = setting(0, "int", "Grow (+) / shrink (−) (px)", minimum=-64, maximum=64, step=1)

    task = "inpaint"

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        checked = super()._validated_own(limits)
        mask = self.mask
        if isinstance(mask, (str, os.PathLike)) and mask != "":
            mask = open_upload(mask, "mask")  # in its own mode: a mask keeps its alpha
        if not isinstance(mask, Image.Image):
            raise ValidationError("mask", "paint over the area to repaint (the mask is empty)")
        mask = fitted_mask(mask, checked["image"].size)
        checked_mask(mask, mask.size, self.grow)  # an empty mask is refused before queueing
        return dict(checked, mask=mask)


def fitted_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The mask at the image's size. A mask of the image's shape at another size (painted on the picture
    before it was scaled, or made at a lower resolution) is scaled to it — the front says so; one of
    another shape was drawn for another picture, and no scaling would make it line up."""
    if mask.size == size:
        return mask
    (width, height), (mask_width, mask_height) = size, mask.size
    if abs(mask_height * width / mask_width - height) > max(2, height / 50):
        raise ValidationError(
            "mask", f"{mask_width}×{mask_height} is not the shape of the image ({width}×{height}): "
            "give a mask of the image's proportions, white where it is to be repainted"
        )
    return mask.resize(size, Image.Resampling.NEAREST)


def native_size(pipe) -> int:
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


def repaint(
    pipe,
    request: PaintSettings,
    image: Image.Image,
    mask: Image.Image,
    grow_by: int,
    seeds: list[int],
    *,
    protect: np.ndarray | None = None,
    on_step=None,
    should_stop: Callable[[], bool] = never,
    stages: dict | None = None,
) -> Output:
    """Repaint the masked area of `image`, one result per seed.

    Args:
        pipe: an inpainting pipeline with its scheduler set for this request.
        request: prompt, strength, feather, crop and fill settings.
        image, mask: what to repaint, and where (white = repaint), grown by `grow_by` pixels.
        seeds: one per result.
        protect: optional boolean array of pixels that must never change (outpainting's original).
        stages: the model's stage, for an area worked two or four times smaller than it is.
    """
    from ..device.sampling import guided  # torch: loaded where the work runs
    from ..device.upscaling import Cascade

    original = np.asarray(image.convert("RGB"))
    height, width = original.shape[:2]

    # 1. The mask: binary at the image's size, grown or shrunk, then feathered for the final blend.
    binary = checked_mask(mask, (width, height), grow_by)
    soft = feather(binary, request.mask_blur)
    if protect is not None:
        soft[protect] = 0

    # 2. Where to work: the mask's box with context (at the model's size), or the whole image.
    box = (
        square_box(bounding_box(binary, request.padding), (width, height))
        if request.only_masked
        else (0, 0, width, height)
    )
    left, top, right, bottom = box
    size = work_size(right - left, bottom - top, native_size(pipe))

    # 3. What the masked area starts from, then the crop the model sees.
    start = fill_masked(original, binary, request.fill, np.random.default_rng(seeds[0]))
    crop = Image.fromarray(start[top:bottom, left:right]).resize(size, Image.Resampling.LANCZOS)
    crop_mask = Image.fromarray(binary[top:bottom, left:right]).resize(size, Image.Resampling.NEAREST)

    # 4. Sample; an area worked two or four times smaller than it is goes back up through the model's stage.
    scale = back_scale((right - left, bottom - top), size, request.upscale)
    cascade = Cascade(stages, replace(request, upscale=scale), len(seeds), size, on_step, should_stop)
    output = pipe(
        image=crop,
        mask_image=crop_mask,
        width=size[0],
        height=size[1],
        **guided(request, seeds, cascade.hook, should_stop, strength=request.strength),
    )

    # 5. Paste back and composite in pixel space; correct the edge where the seam shows.
    images, edges = [], []
    for generated in cascade.finish(output.images, seeds):
        canvas = original.copy()
        canvas[top:bottom, left:right] = np.asarray(
            generated.convert("RGB").resize((right - left, bottom - top), Image.Resampling.LANCZOS)
        )
        result, seam, edge = finished_edge(original, canvas, binary, soft, request.color_correction)
        images.append(Image.fromarray(result))
        edges.append({"seam": round(seam, 2), "edge": edge})

    # 6. Each result's recipe: its seam and what was done about it, the mask, and how the work was done.
    how = dict(mask_hash=mask_hash(binary), box=list(box), work_size=list(size), **cascade.recorded)
    return Output(images, seeds, [{**edge, **how} for edge in edges])


def finished_edge(
    original: np.ndarray, canvas: np.ndarray, binary: np.ndarray, soft: np.ndarray, correct: bool
) -> tuple[np.ndarray, float, str]:
    """The composite, its seam, and what was done about it (clean / blended / visible).

    Above the threshold (and with correction on) two corrections are tried — one global colour shift
    for a colour cast, one that varies along the border for a halo — and the lowest seam is kept, so a
    correction never makes an edge worse. Only the generated pixels change, and the composite keeps
    every pixel outside the feathered mask.
    """
    result = composite(original, canvas, soft)
    seam = seam_score(result, binary)
    if seam <= SEAM_THRESHOLD:
        return result, seam, "clean"
    edge = "visible"
    if correct:
        for fix in (match_colour, blend_edge):
            corrected = composite(original, fix(canvas, original, binary), soft)
            corrected_seam = seam_score(corrected, binary)
            if corrected_seam < seam:
                result, seam, edge = corrected, corrected_seam, "blended"
    return result, seam, edge


def run(
    pipe, request: InpaintRequest, seeds: list[int], *, on_step=None, should_stop: Callable[[], bool] = never,
    stages: dict | None = None,
) -> Output:
    """Repaint the white part of `request.mask` in `request.image`, one result per seed."""
    return repaint(pipe, request, request.image, request.mask, request.grow, seeds, on_step=on_step,
                   should_stop=should_stop, stages=stages)


TASK = Task(InpaintRequest, run)
