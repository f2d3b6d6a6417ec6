"""Text to image: classifier-free guided sampling from seeded noise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..front.errors import ValidationError
from ..front.fields import setting
from ..front.requests import Limits, Request
from ..front.runner import Output, Task, never


@dataclass(frozen=True, kw_only=True)
class Txt2ImgRequest(Request):
    width: int = setting(512, "size", "Width", minimum="min_size", maximum="max_size", step=8, a1111="width",
                         preset="width", recorded=False)
    height: int = setting(512, "size", "Height", minimum="min_size", maximum="max_size", step=8, a1111="height",
                          preset="height", recorded=False)
    # Tames the over-exposed colours of strong guidance (Lin et al. 2023).
    guidance_rescale: float = setting(0.0, "float", "Guidance rescale (0.7 tames over-exposed colours)", minimum=0.0,
                                      maximum=1.0, step=0.05)

    task = "txt2img"
    pipeline = "txt2img"

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        if self.width * self.height > limits.max_pixels:
            raise ValidationError("width", f"{self.width}×{self.height} is more than {limits.max_pixels} pixels")
        return {}

    def output_size(self) -> tuple[int, int]:
        return self.width, self.height


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
    from ..device.sampling import guided  # torch: loaded where the work runs

    # 1. Guidance rescale only where it is asked for; some pipelines lack the argument.
    extra = {"guidance_rescale": request.guidance_rescale} if request.guidance_rescale else {}
    # 2. Sample: noise drawn per image on the CPU from its own seed.
    output = pipe(width=request.width, height=request.height, **guided(request, seeds, on_step, should_stop), **extra)
    return Output(list(output.images), seeds)


TASK = Task(Txt2ImgRequest, run)
