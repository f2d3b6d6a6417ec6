"""Text to image: classifier-free guided sampling from seeded noise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from ..requests import Limits, Request, as_float, as_size
from ..runner import Output, Task, never


@dataclass(frozen=True, kw_only=True)
class Txt2ImgRequest(Request):
    width: int = 512  # pixels, a multiple of 8 within the model's limits
    height: int = 512
    guidance_rescale: float = 0.0  # 0–1: tames the over-exposed colours of strong guidance (Lin et al. 2023)

    task = "txt2img"
    pipeline = "txt2img"

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        width, height = as_size("width", self.width, limits), as_size("height", self.height, limits)
        if width * height > limits.max_pixels:
            raise ValidationError("width", f"{width}×{height} is more than {limits.max_pixels} pixels")
        return dict(
            width=width, height=height, guidance_rescale=as_float("guidance_rescale", self.guidance_rescale, 0.0, 1.0)
        )

    def output_size(self) -> tuple[int, int]:
        return self.width, self.height

    def recipe_fields(self) -> dict[str, Any]:
        return {"guidance_rescale": self.guidance_rescale}


def run(
    pipe, request: Txt2ImgRequest, seeds: list[int], *, on_step=None, should_stop: Callable[[], bool] = never
) -> Output:
    """Generate one image per seed.

    Args:
        pipe: a text-to-image pipeline, its scheduler already set for this request.
        request: the validated request (prompt, size, steps, guidance…).
        seeds: one seed per image; image i is reproducible alone with seeds[i].
        on_step: called after every denoising step with (step, total, latents).
        should_stop: polled every step; True stops the run with `Cancelled`.
    """
    from ..sampling import guided  # torch: loaded where the work runs

    # 1. Guidance rescale only where it is asked for; some pipelines lack the argument.
    extra = {"guidance_rescale": request.guidance_rescale} if request.guidance_rescale else {}
    # 2. Sample: noise drawn per image on the CPU from its own seed.
    output = pipe(width=request.width, height=request.height, **guided(request, seeds, on_step, should_stop), **extra)
    return Output(list(output.images), seeds)


TASK = Task(Txt2ImgRequest, run)
