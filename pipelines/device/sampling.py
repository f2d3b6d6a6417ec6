"""What every task's sampling shares: seeded noise, the step callback, the arguments of a guided run.

Device side: imported by a task's work when it runs, never by the front.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import diffusers
import torch
from diffusers import DiffusionPipeline, EulerAncestralDiscreteScheduler

from ..front.errors import Cancelled
from ..front.requests import Request
from ..front.schedulers import SCHEDULERS

StepHook = Callable[[int, int, torch.Tensor], None]  # (step done, total, latents)


class SteadyEulerAncestral(EulerAncestralDiscreteScheduler):
    """diffusers' Euler a, its sigmas taken to float64 where diffusers' float32 step would fail. On a
    cosine schedule (the ×4 stage's: σ from 2·10⁴ down) float32 rounding can make σ_up exceed σ_to, so
    σ_down is the root of a negative and the picture NaN (diffusers#14213; the stage at 3 steps). Elsewhere
    the arithmetic stays diffusers' own, so a result equals a plain diffusers call to the bit."""

    def set_timesteps(self, *args, **kwargs) -> None:
        super().set_timesteps(*args, **kwargs)
        start, end = self.sigmas[:-1], self.sigmas[1:]  # each step's σ_from and σ_to, computed as step() does
        up = (end**2 * (start**2 - end**2) / start**2) ** 0.5
        if (end**2 - up**2 < 0).any() and self.sigmas.device.type != "mps":  # no float64 there
            self.sigmas = self.sigmas.to(torch.float64)


def fresh_scheduler(name: str, config: Mapping[str, Any]):
    """A new scheduler of the named kind (the table in front/schedulers.py), configured like the model's
    own (`config`): diffusers' class, or the stand-in here that fixes it."""
    sampler = SCHEDULERS[name]
    cls = {"EulerAncestralDiscreteScheduler": SteadyEulerAncestral}.get(sampler.cls) or getattr(diffusers, sampler.cls)
    return cls.from_config(config, **sampler.overrides)


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


def schedule_length(steps: int, strength: float) -> int:
    """The number of steps to ask of an image-to-image run so that at least one denoising step runs.

    diffusers runs int(steps × strength) steps of a `steps`-long schedule, and at 0 it fails deep in the
    autoencoder (SD-Turbo at 2 steps with strength 0.45, say). As AUTOMATIC1111 does, one step runs
    then: the schedule is lengthened until its last step starts at the asked strength, so the image
    still changes as much as the strength says, no more.
    """
    length = steps
    while int(length * strength) < 1:
        length += 1
    return length


def guided(
    request: Request,
    seeds: list[int],
    on_step: StepHook | None,
    should_stop: Callable[[], bool],
    *,
    strength: float | None = None,
) -> dict[str, Any]:
    """The arguments every guided run takes: one prompt and one seeded generator per image, the
    request's steps and guidance, and the step callback; for a run that starts from an image, its
    `strength` with at least one denoising step."""
    n = len(seeds)
    start = {} if strength is None else dict(strength=strength)
    return dict(
        **start,
        prompt=[request.prompt] * n,
        negative_prompt=[request.negative_prompt] * n,
        num_inference_steps=request.steps if strength is None else schedule_length(request.steps, strength),
        guidance_scale=request.guidance_scale,
        generator=generators(seeds),
        callback_on_step_end=step_callback(on_step, should_stop),
        callback_on_step_end_tensor_inputs=["latents"],
    )
