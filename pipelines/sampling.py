"""What every task's sampling loop shares: seeded noise and the step callback."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from .errors import Cancelled
from .requests import MAX_SEED

StepHook = Callable[[int, int, torch.Tensor], None]  # (step done, total, latents)


def resolve_seed(seed: int) -> int:
    """−1 means random: draw one now, so the recipe records the seed actually used."""
    return secrets.randbelow(MAX_SEED + 1) if seed == -1 else seed


def seeds_for(seed: int, count: int) -> list[int]:
    """Image i of a batch uses seed + i (wrapping), so each can be made again alone."""
    return [(seed + i) % (MAX_SEED + 1) for i in range(count)]


def generators(seeds: list[int]) -> list[torch.Generator]:
    """CPU generators: the starting noise is the same on every device."""
    return [torch.Generator("cpu").manual_seed(s) for s in seeds]


def step_callback(on_step: StepHook | None, should_stop: Callable[[], bool]):
    """A `callback_on_step_end` that reports progress and stops the run when asked.

    Raising (rather than setting `pipe._interrupt`) also skips the final decode, so Stop is immediate.
    """

    def callback(pipe: DiffusionPipeline, step: int, timestep, kwargs: dict) -> dict:
        if should_stop():
            raise Cancelled()
        if on_step is not None:
            on_step(step + 1, pipe.num_timesteps, kwargs["latents"])
        return kwargs

    return callback


def to_pil(images) -> list[Image.Image]:
    return [img if isinstance(img, Image.Image) else Image.fromarray(img) for img in images]
