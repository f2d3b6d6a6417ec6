"""The Upscale task's work: a super-resolution stage or a hires pass, tile by tile past one tile's size.

Device side: imported by the task's work when it runs, never by the front.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionLatentUpscalePipeline, StableDiffusionUpscalePipeline
from PIL import Image

from ..front.errors import Cancelled
from .pixel_upscale import PixelUpscalePipeline
from .sampling import StepHook, generators, schedule_length

STAGES = (PixelUpscalePipeline, StableDiffusionUpscalePipeline, StableDiffusionLatentUpscalePipeline)
OVERLAP = 1 / 8  # of a tile's side, shared with each neighbour and blended across
STAGE_TILE = {PixelUpscalePipeline: 128, StableDiffusionUpscalePipeline: 128, StableDiffusionLatentUpscalePipeline: 512}


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one side: `tile` apart less `overlap`, the last one flush with the end."""
    if length <= tile:
        return [0]
    step = tile - overlap
    origins = list(range(0, length - tile, step))
    return origins + [length - tile]


def ramp(size: int, overlap: int, first: bool) -> np.ndarray:
    """A tile's opacity along one side: rising across the overlap it shares with the tile before it (which
    keeps one minus it there, so the two always sum to one), whole elsewhere."""
    weight = np.ones(size, np.float32)
    if overlap and not first:
        weight[:overlap] = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
    return weight


def tiled(work: Callable[[Image.Image, int], Image.Image], image: Image.Image, scale: int, tile: int) -> Image.Image:
    """`work(piece, index)` ×`scale` on overlapping tiles of `image` (sides ≤ `tile`), blended into one.

    Tiles are laid on the result in reading order, each fading in across the overlaps it shares with the
    tiles before it (left and above): a seam fades over the overlap instead of showing as a line, and the
    edge a tile's work leaves along its own border lies under its neighbour's interior. Nothing but the
    result is kept per pixel (no blending canvas), so memory is one tile's work plus the result itself.
    """
    width, height = image.size
    if max(width, height) <= tile:
        return work(image, 0)
    overlap = max(8, round(tile * OVERLAP))
    xs, ys = starts(width, tile, overlap), starts(height, tile, overlap)
    result = Image.new("RGB", (width * scale, height * scale))
    for row, y in enumerate(ys):
        for column, x in enumerate(xs):
            box = (x, y, min(x + tile, width), min(y + tile, height))
            size = ((box[2] - x) * scale, (box[3] - y) * scale)
            # A stage rounds a side that is not a multiple of its autoencoder's factor: back to the tile's.
            piece = work(image.crop(box), row * len(xs) + column).convert("RGB").resize(size, Image.Resampling.LANCZOS)
            opacity = np.outer(ramp(piece.height, overlap * scale, row == 0), ramp(piece.width, overlap * scale, column == 0))
            result.paste(piece, (x * scale, y * scale), Image.fromarray(np.round(opacity * 255).astype(np.uint8)))
    return result


def tile_count(size: tuple[int, int], tile: int) -> int:
    overlap = max(8, round(tile * OVERLAP))
    return len(starts(size[0], tile, overlap)) * len(starts(size[1], tile, overlap))


def plan(pipe, request) -> tuple[Image.Image, int, int, int, int]:
    """(the picture the tiles cut, its scale, the tile's side, the steps of one tile's run, the steps
    that report progress over the whole picture) for `request` on `pipe`."""
    image, scale = request.image, request.scale
    if isinstance(pipe, STAGES):  # a larger stage than asked is scaled down after
        source, made_scale, tile, steps = image, stage_scale(pipe), STAGE_TILE[type(pipe)], request.steps
        return source, made_scale, tile, steps, steps * tile_count(source.size, tile)
    # A hires pass: resized first, then redrawn tile by tile at the model's own size.
    source = image.resize((image.width * scale, image.height * scale), Image.Resampling.LANCZOS)
    if request.new_detail == 0:  # nothing to redraw
        return source, 1, max(source.size), 0, 0
    steps = schedule_length(request.steps, request.new_detail)
    tile = _native(pipe)
    return source, 1, tile, steps, int(steps * request.new_detail) * tile_count(source.size, tile)


def upscale(pipe, request, seed: int, on_step: StepHook | None, should_stop: Callable[[], bool]) -> Image.Image:
    """`request.image` at ×`request.scale` from `pipe` (a stage, or image to image for a hires pass)."""
    target = (request.image.width * request.scale, request.image.height * request.scale)
    source, made_scale, tile, steps, total = plan(pipe, request)
    if total == 0:
        return source
    stage = isinstance(pipe, STAGES)
    per_tile = total // tile_count(source.size, tile)

    def work(piece: Image.Image, index: int) -> Image.Image:
        def report(step: int, latents) -> None:
            if should_stop():
                raise Cancelled()
            if on_step is not None:
                on_step(index * per_tile + step, total, latents, pipe)

        arguments = dict(
            prompt=request.prompt, negative_prompt=request.negative_prompt or None, num_inference_steps=steps,
            guidance_scale=request.guidance_scale, generator=generators([(seed + index) % 2**32])[0],
        )
        if stage:
            return _stage(pipe, piece, request, arguments, report)
        return pipe(image=piece, strength=request.new_detail, callback_on_step_end=step_end(report),
                    callback_on_step_end_tensor_inputs=["latents"], **arguments).images[0]

    made = tiled(work, source, made_scale, tile)
    return made if made.size == target else made.resize(target, Image.Resampling.LANCZOS)


class Cascade:
    """A base run's pictures, each on through a super-resolution stage after it, under one progress bar.

    The stage is the one the runner handed the work for `request.stages()` (a ×4 one serves ×2 too); without
    it the cascade passes the pictures through as they are. `request.upscaling(picture)` says how. The base
    run reports through `hook` with its own length, and the bar's total is that plus every picture's stage
    steps.
    """

    def __init__(self, stages: dict | None, request, count: int, size: tuple[int, int], on_step: StepHook | None,
                 should_stop: Callable[[], bool]):
        self.stage = next(iter(stages.values()), None) if stages and request.stages() else None
        self.request, self.on_step, self.should_stop = request, on_step, should_stop
        probe = request.upscaling(Image.new("RGB", size)) if self.stage else None
        self.per_picture = stage_steps(self.stage, probe) if probe else 0
        self.scale = probe.scale if probe else 1
        self.after, self.base_total = count * self.per_picture, 0

    @property
    def recorded(self) -> dict[str, int]:
        """What a recipe says of it: how many times larger the pictures came back (nothing without it)."""
        return {"upscaled": self.scale} if self.stage is not None else {}

    @property
    def hook(self) -> StepHook | None:
        """The base run's step hook."""
        if self.stage is None or self.on_step is None:
            return self.on_step

        def hook(step: int, total: int, latents, source=None) -> None:
            self.base_total = total
            self.on_step(step, total + self.after, latents, source)

        return hook

    def finish(self, images: list[Image.Image], seeds: list[int]) -> list[Image.Image]:
        """The base run's pictures through the stage, each from its own seed."""
        if self.stage is None:
            return list(images)
        done, total = self.base_total, self.base_total + self.after
        return [upscale(self.stage, self.request.upscaling(image), seed,
                        later(self.on_step, done + i * self.per_picture, total), self.should_stop)
                for i, (image, seed) in enumerate(zip(images, seeds))]


def later(on_step: StepHook | None, done: int, total: int) -> StepHook | None:
    """The hook of a stage that starts after `done` of the job's `total` steps: one progress bar for all."""
    if on_step is None:
        return None

    def hook(step: int, _: int, latents, source=None) -> None:
        on_step(done + step, total, latents, source)

    return hook


def step_end(report: Callable[[int, torch.Tensor | None], None]):
    """A `callback_on_step_end` that hands each step and its latents to `report`."""

    def callback(pipe, index: int, timestep, kwargs: dict) -> dict:
        report(index + 1, kwargs["latents"])
        return kwargs

    return callback


def stage_steps(pipe, request) -> int:
    """How many steps upscaling `request` on `pipe` reports, all tiles together."""
    return plan(pipe, request)[4]


def stage_scale(pipe) -> int:
    return 2 if isinstance(pipe, StableDiffusionLatentUpscalePipeline) else 4


def _native(pipe) -> int:
    """The side an image-to-image pipeline draws best at: its U-Net's trained size in pixels."""
    return int(pipe.unet.config.sample_size * pipe.vae_scale_factor)


def _stage(pipe, piece: Image.Image, request, arguments: dict, report: Callable[[int, torch.Tensor | None], None]) -> Image.Image:
    """One tile through a super-resolution stage, each kind called as its own documentation shows."""
    if isinstance(pipe, PixelUpscalePipeline):
        level = round(request.new_detail * pipe.config.max_noise_level)
        return pipe(image=piece, noise_level=level, callback_on_step_end=step_end(report), **arguments).images[0]
    # Stability's stages take the older per-step callback; their latents have no cheap preview here.
    callback = dict(callback=lambda i, t, latents: report(i + 1, None), callback_steps=1)
    if isinstance(pipe, StableDiffusionUpscalePipeline):
        level = round(request.new_detail * pipe.config.max_noise_level)
        return pipe(image=piece, noise_level=level, **callback, **arguments).images[0]
    # The ×2 stage denoises with Karras' preconditioning itself and steps with the denoised latents, which
    # only Euler takes (the other samplers raise on a "sample" prediction): Euler, whatever was asked.
    if not isinstance(pipe.scheduler, EulerDiscreteScheduler):
        pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    return pipe(image=piece, **callback, **arguments).images[0]
