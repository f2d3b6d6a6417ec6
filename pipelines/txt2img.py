"""Text to image: classifier-free guided sampling from seeded noise."""

from __future__ import annotations

from collections.abc import Callable

from diffusers import DiffusionPipeline
from PIL import Image

from .requests import Txt2ImgRequest
from .sampling import StepHook, generators, step_callback


def text_to_image(
    pipe: DiffusionPipeline,
    request: Txt2ImgRequest,
    seeds: list[int],
    *,
    on_step: StepHook | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[Image.Image]:
    """Generate one image per seed.

    Args:
        pipe: a text-to-image pipeline with its scheduler already set for this request.
        request: the validated request (prompt, size, steps, guidance…).
        seeds: one seed per image; image i is reproducible alone with seeds[i].
        on_step: called after every denoising step with (step, total, latents).
        should_stop: polled every step; True stops the run with `Cancelled`.
    """
    n = len(seeds)
    # 1. Guidance rescale (Lin et al. 2023) only where it is asked for; some pipelines lack the argument.
    extra = {"guidance_rescale": request.guidance_rescale} if request.guidance_rescale else {}
    # 2. Sample: noise drawn per image on the CPU from its own seed.
    output = pipe(
        prompt=[request.prompt] * n,
        negative_prompt=[request.negative_prompt] * n,
        width=request.width,
        height=request.height,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance_scale,
        generator=generators(seeds),
        callback_on_step_end=step_callback(on_step, should_stop),
        callback_on_step_end_tensor_inputs=["latents"],
        **extra,
    )
    return list(output.images)
