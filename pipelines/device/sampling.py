"""What every task's sampling shares: seeded noise, the step callback, the arguments of a guided run.

Device side: imported by a task's work when it runs, never by the front.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers import DiffusionPipeline

from ..front.errors import Cancelled
from ..front.requests import Request

StepHook = Callable[[int, int, torch.Tensor], None]  # (step done, total, latents)


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
